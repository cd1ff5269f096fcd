"""One registry class for models, tasks and metrics.

Entries are registered as lazy ``"module:attr"`` strings (or objects), so listing
what exists never imports torch or transformers.  Third-party packages add
entries through the entry-point groups ``mmbench.models``, ``mmbench.tasks``,
``mmbench.metrics``, ``mmbench.task_families`` and ``mmbench.dataset_loaders``; entry
points are read on first use.  An unknown name raises
:class:`~mmbench.errors.UnknownNameError` listing the closest registered names.

A broken plugin (its module is gone, or importing it fails) never breaks the others:
it is logged once as a warning naming the plugin and its error, registered as a
*broken* entry (``Entry.error``) that raises that error, naming the plugin, only when
it is asked for, and shown by ``mmbench list``.

Example::

    >>> reg = Registry("metric")
    >>> reg.register("exact", "mmbench.metrics.vqa:exact_match", description="exact match")
    >>> reg.names()
    ['exact']
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

from mmbench.errors import MMBenchError, UnknownNameError

log = logging.getLogger(__name__)
#: plugins (distribution names) already warned about in this process: one warning per plugin,
#: however many entry points it has
_WARNED: set[str] = set()


def plugin_label(ep: metadata.EntryPoint) -> str:
    """``"example-tasks (plugin mmbench-example-plugin)"``: the entry point and its distribution."""
    dist = getattr(ep, "dist", None)
    return f"{ep.name} (plugin {dist.name if dist else ep.value})"


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
    #: set for a broken plugin: why it cannot be loaded (``load`` raises it)
    error: str | None = None

    def load(self) -> Any:
        if self.error is not None:
            raise MMBenchError(f"{self.name!r} is from a plugin that cannot be loaded ({self.source}): {self.error}")
        if isinstance(self.target, str) and ":" in self.target:
            try:
                return import_string(self.target)
            except MMBenchError as exc:
                if self.source.startswith("entry point"):
                    raise MMBenchError(f"{self.name!r} is from a plugin that cannot be loaded ({self.source}): "
                                       f"{exc}") from None
                raise
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
        #: plugin label -> error, for plugins that could not be loaded
        self.broken: dict[str, str] = {}

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

    def register_broken(self, ep: metadata.EntryPoint, error: BaseException | str) -> None:
        """Record an entry point that cannot be loaded: warn once per plugin, and register its
        name as an entry whose ``load`` raises ``error`` (with the plugin named)."""
        label = plugin_label(ep)
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        dist = ep.dist.name if getattr(ep, "dist", None) else ep.value
        if dist not in _WARNED:
            _WARNED.add(dist)
            log.warning("mmbench: plugin %s cannot be loaded, so what it provides is unavailable (%s entry point "
                        "%s: %s)", dist, self.kind, ep.name, message)
        self.broken[label] = message
        if ep.name not in self._entries:
            self._entries[ep.name] = Entry(ep.name, ep.value, f"broken plugin: {message}", {},
                                           f"entry point {label}", error=message)

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
                missing = _missing_module(ep)
                if missing:
                    self.register_broken(ep, missing)
                elif self._on_entry_point is not None:
                    try:
                        self._on_entry_point(self, ep)
                    except Exception as exc:  # one broken plugin must not break the others
                        self.register_broken(ep, exc)
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
        broken = "".join(f" It may come from {label}, which cannot be loaded: {error}."
                         for label, error in sorted(self.broken.items()))
        return (f"unknown {self.kind} {name!r}.{hint}{broken} "
                f"Run `mmbench list {self.kind}s` to see all {len(names)} registered {self.kind}s.")

    def resolve(self, value: str, *, trust_remote_code: bool = False) -> Any:
        """The object a task file's hook names (``loader:``, ``class:``): a registered name, or an
        import string equal to a registered entry's target.  Any other ``"module:attr"`` is
        imported only with ``trust_remote_code`` (a task file is data: it must not choose what
        code runs); without it, or for an unknown plain name, an :class:`MMBenchError` says so."""
        self._ensure_loaded()
        if value in self._entries:
            return self._entries[value].load()
        for entry in self._entries.values():
            if isinstance(entry.target, str) and entry.target == value:
                return entry.load()
        if ":" not in value:
            raise UnknownNameError(self.unknown_message(value))
        if not trust_remote_code:
            raise MMBenchError(
                f"{value!r} is an import string, not a registered {self.kind}: running code named by a task "
                f"file needs --trust-remote-code (trust_remote_code=True), or register it (entry-point group "
                f"{self.entry_point_group!r}; registered: {', '.join(sorted(self._entries)) or 'none'})")
        return import_string(value)


def _missing_module(ep: metadata.EntryPoint) -> str | None:
    """Why ``ep`` cannot be imported, if its top-level package is gone (checked without importing it)."""
    top = ep.value.partition(":")[0].strip().split(".")[0]
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if found else f"ModuleNotFoundError: No module named {top!r}"
