"""A key/value cache that grows in place while ``generate`` decodes.

transformers' ``DynamicLayer.update`` appends a step's keys and values with ``torch.cat``, which
copies the whole cache of the layer at every step: decoding ``n`` tokens after an ``L``-token
prompt copies about ``n * L`` positions per layer.  On the easy-VQA VQA run (221M LLaVA, batch
32, 230-token prompts, 8 new tokens) those copies were 35-44% of the model's time on a CPU
(``torch.profiler``: ``aten::cat``, about 4 ms a call).  ``StaticCache`` avoids them, but it
changes the attention shapes (every step attends over the full capacity, masked) and needs its
size before the prompt is known; here each layer instead keeps a buffer with room for the
tokens still to come, writes a step into it, and hands attention a view of the filled part:
the same keys and values, the same shapes, without the copies.

Written by hand because transformers has no such layer: its growing layer concatenates, its
static one is fixed-size and masked.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any


def _dynamic_layer() -> type:
    from transformers.cache_utils import DynamicLayer

    return DynamicLayer


@functools.cache
def room_layer_class() -> type:
    """The :class:`RoomLayer` class (made on first use: transformers is imported lazily)."""
    DynamicLayer = _dynamic_layer()

    class RoomLayer(DynamicLayer):
        """A ``DynamicLayer`` that holds its keys and values in buffers with ``room`` free positions.

        ``keys`` and ``values`` are always views of the filled part, so everything that reads
        them (masks, ``get_seq_length``, attention) sees what a ``DynamicLayer`` shows.  When the
        buffer is full, or something replaced ``keys`` (a beam reorder, a crop), the next update
        starts a new buffer from the current tensors.
        """

        def __init__(self, room: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.room = max(int(room), 0)
            self._kbuf = self._vbuf = self._kview = None
            self._length = 0

        def _adopt(self, keys: Any, values: Any, extra: int, rows: Sequence[int] | None = None) -> None:
            """New buffers holding ``keys``/``values`` with space for ``extra`` + ``room`` more positions;
            with ``rows``, buffer row r holds row ``rows[r]`` (a shared prefix's cache copied to each
            of its rows without an intermediate copy)."""
            import torch

            length = keys.shape[-2]
            capacity = length + extra + self.room
            batch = keys.shape[:1] if rows is None else (len(rows),)
            self._kbuf = torch.empty(batch + keys.shape[1:-2] + (capacity, keys.shape[-1]), dtype=keys.dtype,
                                     device=keys.device)
            self._vbuf = torch.empty(batch + values.shape[1:-2] + (capacity, values.shape[-1]), dtype=values.dtype,
                                     device=values.device)
            if rows is None:
                self._kbuf[..., :length, :] = keys
                self._vbuf[..., :length, :] = values
            else:
                # one broadcast copy per run of rows with the same source (the rows of a group are
                # adjacent): a slice copy, several times faster than an indexed one (index_put)
                start = 0
                for end in range(1, len(rows) + 1):
                    if end == len(rows) or rows[end] != rows[start]:
                        self._kbuf[start:end, ..., :length, :] = keys[rows[start]]
                        self._vbuf[start:end, ..., :length, :] = values[rows[start]]
                        start = end
            self._length = length
            self._set_views()

        def _set_views(self) -> None:
            self.keys, self.values = self._kbuf[..., :self._length, :], self._vbuf[..., :self._length, :]
            self._kview = self.keys

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = key_states.shape[-2]
            ours = self._kbuf is not None and self.keys is self._kview  # not replaced by a reorder or a crop
            if not ours or self._length + n > self._kbuf.shape[-2]:
                if self.keys is None or self.keys.numel() == 0:  # the first update: this is the prompt
                    self._adopt(key_states, value_states, 0)
                    return self.keys, self.values
                self._adopt(self.keys, self.values, n)
            end = self._length + n
            self._kbuf[..., self._length:end, :] = key_states
            self._vbuf[..., self._length:end, :] = value_states
            self._length = end
            self._set_views()
            return self.keys, self.values

    return RoomLayer


def make_room(cache: Any, room: int, rows: Sequence[int] | None = None) -> Any:
    """Turn every plain ``DynamicLayer`` of ``cache`` (a transformers 5.x ``Cache`` with ``layers``)
    into a :class:`RoomLayer` with space for ``room`` more positions, keeping its contents; other
    layer kinds (sliding windows, static, quantized) are left as they are.  With ``rows``, the
    cache first gets one row per entry, row r a copy of row ``rows[r]`` (what
    ``cache.batch_select_indices`` does, written straight into the new buffers).  Returns ``cache``."""
    layers = getattr(cache, "layers", None)
    if not layers:
        if rows is not None:
            cache.batch_select_indices(_index(rows, None))
        return cache
    dynamic, room_cls = _dynamic_layer(), room_layer_class()
    for i, layer in enumerate(layers):
        if type(layer) is not dynamic:
            if rows is not None:
                layer.batch_select_indices(_index(rows, layer.keys))
            continue
        new = room_cls(room)
        if layer.is_initialized and layer.keys is not None and layer.keys.numel():
            new.lazy_initialization(layer.keys, layer.values)
            new._adopt(layer.keys, layer.values, 0, rows)
        layers[i] = new
    return cache


def _index(rows: Sequence[int], like: Any) -> Any:
    """``rows`` as an index tensor on the device of ``like`` (a layer's keys; None: the default)."""
    import torch

    return torch.tensor(list(rows), device=getattr(like, "device", None))


def growing_cache(model: Any, room: int) -> Any:
    """An empty cache for ``model.generate`` whose plain layers grow in place (:func:`make_room`),
    or None when the model's cache layout is not a ``DynamicCache`` built from its config."""
    try:
        from transformers.cache_utils import DynamicCache

        cache = DynamicCache(config=model.config)
    except Exception:  # noqa: BLE001 - an unusual config: generate makes its own cache
        return None
    if not getattr(cache, "layers", None):
        return None
    return make_room(cache, room)
