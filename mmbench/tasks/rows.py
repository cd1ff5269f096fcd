"""The rows of a ``datasets.Dataset``, converted from Arrow a chunk at a time, and the checks a
streamed run makes on a whole column without converting it (ids)."""

from __future__ import annotations

from collections import abc
from typing import Any, Iterator


class DatasetRows(abc.Sequence):
    """The rows of a ``datasets.Dataset`` as dicts, converted from Arrow a chunk at a time.

    Iterating converts :attr:`CHUNK` rows per ``to_list()`` call (one Arrow-to-Python conversion
    per chunk: 10x faster than row by row), so a 200k-row task never holds every row as a dict at
    once, only its samples.  ``base_dir`` (relative image paths' folder) is set on each row as
    ``__base_dir__``.  Indexing and slicing work as on a list.
    """

    CHUNK = 8192

    def __init__(self, ds: Any, base_dir: str | None = None) -> None:
        self._ds, self.base_dir = ds, base_dir

    def __len__(self) -> int:
        return len(self._ds)

    def _rows(self, start: int, stop: int) -> list[dict]:
        rows = self._ds.select(range(start, stop)).to_list()
        if self.base_dir is not None:
            for r in rows:
                r["__base_dir__"] = self.base_dir
        return rows

    def __getitem__(self, index: Any) -> Any:
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return DatasetRows(self._ds.select(range(start, max(start, stop))), self.base_dir)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(index)
        return self._rows(i, i + 1)[0]

    def __iter__(self) -> Iterator[dict]:
        for start in range(0, len(self), self.CHUNK):
            yield from self._rows(start, min(start + self.CHUNK, len(self)))

    def _column(self, col: str) -> Any:
        return self._ds.with_format("arrow")[col]

    def has_plain_ids(self, col: str) -> bool:
        """Whether column ``col`` holds strings or integers (ids :meth:`id_problem` can check in Arrow)."""
        import pyarrow as pa

        if col not in self._ds.column_names:
            return False
        t = self._ds.features.arrow_schema.field(col).type
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)

    def id_problem(self, col: str) -> tuple[int, int | None] | None:
        """The first row (in row order) that a sequential read would fail on, from column ``col`` alone:
        ``(row, None)`` for a row without an id (null or empty), ``(first, row)`` for a row repeating
        the id of row ``first``; None when every row has its own id.  Works on the Arrow column and
        numpy arrays (about 40 bytes a row, freed on return), never on a Python string per row."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self._column(col)
        missing = pc.is_null(column)
        if pa.types.is_integer(column.type):
            values = np.asarray(pc.fill_null(column, 0).combine_chunks(), dtype=np.int64)
        else:  # strings: their codes in a dictionary of the distinct ids
            missing = pc.or_(missing, pc.fill_null(pc.equal(column, ""), False))
            values = np.asarray(pc.fill_null(pc.dictionary_encode(column).combine_chunks().indices, 0),
                                dtype=np.int64)
        missing = np.asarray(missing.combine_chunks() if isinstance(missing, pa.ChunkedArray) else missing,
                             dtype=bool)
        del column
        pa.default_memory_pool().release_unused()  # the dictionary: returned now, not kept for the run
        rows = np.flatnonzero(~missing)
        values = values[rows]
        order = np.argsort(values, kind="stable")  # equal ids stay in row order
        ranked = values[order]
        repeat = np.flatnonzero(ranked[1:] == ranked[:-1]) + 1  # positions (in ``ranked``) of later copies
        dup = None
        if len(repeat):
            second = int(order[repeat].min())  # the earliest row that repeats an id, among rows with ids
            first = int(order[np.searchsorted(ranked, values[second])])
            dup = (int(rows[first]), int(rows[second]))
        first_missing = int(np.argmax(missing)) if missing.any() else -1
        if first_missing >= 0 and (dup is None or first_missing < dup[1]):
            return (first_missing, None)
        return dup
