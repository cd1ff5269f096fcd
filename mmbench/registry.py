"""One registry class for models, tasks and metrics.

Entries are registered as lazy ``"module:attr"`` strings (or objects), so listing
what exists never imports torch or transformers.  Third-party packages add
entries through the entry-point groups ``mmbench.models``, ``mmbench.tasks`` and
``mmbench.metrics``; entry points are read on first use.  An unknown name raises
:class:`~mmbench.errors.UnknownNameError` listing the closest registered names.

Example::

    >>> reg = Registry("metric")
    >>> reg.register("exact", "mmbench.metrics.vqa:exact_match", description="exact match")
    >>> reg.names()
    ['exact']
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

from mmbench.errors import MMBenchError, UnknownNameError


def import_string(target: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise MMBenchError(f"expected an import string 'module:attr', got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise MMBenchError(f"cannot import {module_name!r} (for {target!r}): {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise MMBenchError(f"{module_name!r} has no attribute {attr!r} (for {target!r})") from None
    return obj


@dataclass
class Entry:
    """A registered name: what it points to and a one-line description."""

    name: str
    target: Any  # "module:attr" string or the object itself
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    source: str = "builtin"

    def load(self) -> Any:
        if isinstance(self.target, str) and ":" in self.target:
            return import_string(self.target)
        return self.target


class Registry:
    """Names -> entries for one kind of plugin.

    ``entry_point_group`` names the packaging entry-point group scanned on first
    use; ``on_entry_point`` may turn one entry point into several entries (the
    task registry uses it to accept a folder of YAML files).
    """

    def __init__(self, kind: str, entry_point_group: str | None = None,
                 on_entry_point: Callable[["Registry", metadata.EntryPoint], None] | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self._loaders: list[Callable[["Registry"], None]] = []
        self._loaded = False
        self._on_entry_point = on_entry_point

    # -- registration -------------------------------------------------------
    def register(self, name: str, target: Any, *, description: str = "", source: str = "builtin",
                 replace: bool = False, **options: Any) -> None:
        if not name or any(ch.isspace() for ch in name):
            raise MMBenchError(f"invalid {self.kind} name {name!r}")
        existing = self._entries.get(name)
        if existing is not None and not replace:
            raise MMBenchError(
                f"{self.kind} {name!r} is registered twice: by {existing.source} and by {source}")
        self._entries[name] = Entry(name, target, description, dict(options), source)

    def add_loader(self, loader: Callable[["Registry"], None]) -> None:
        """Register a function that populates entries on first use (built-in task folders)."""
        self._loaders.append(loader)
        self._loaded = False

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for loader in self._loaders:
            loader(self)
        if self.entry_point_group:
            for ep in metadata.entry_points(group=self.entry_point_group):
                if self._on_entry_point is not None:
                    self._on_entry_point(self, ep)
                elif ep.name not in self._entries:
                    dist = ep.dist.name if ep.dist else ep.value
                    self.register(ep.name, ep.value, description=f"{ep.value} (plugin {dist})",
                                  source=f"entry point {dist}")

    # -- lookup -------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def entry(self, name: str) -> Entry:
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def get(self, name: str) -> Any:
        return self.entry(name).load()

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def unknown_message(self, name: str) -> str:
        names = sorted(self._entries)
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        close += [n for n in names if name.lower() in n.lower() and n not in close][: 5 - len(close)]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return (f"unknown {self.kind} {name!r}.{hint} "
                f"Run `mmbench list {self.kind}s` to see all {len(names)} registered {self.kind}s.")
