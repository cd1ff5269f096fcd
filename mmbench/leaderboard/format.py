"""Number formats for leaderboard columns: one format per column, chosen from the column's values.

A column mixes no formats: ``1,871.0`` sits beside ``1.4``, never ``1,871`` beside ``1.3547``.
:func:`column_format` picks the decimals from the largest magnitude in the column (4 below 10,
then one fewer per power of ten; none when every value is whole) and always groups thousands;
:func:`params_format` picks one unit (K, M or B) for the whole column.

>>> f = column_format([1871.0, 1.3547])
>>> f(1871.0), f(1.3547)
('1,871.0', '1.4')
>>> column_format([0.25, 0.9])(0.9)
'0.9000'
>>> params_format([136013, 2_500_000])(136013)
'0.1M'
"""

from __future__ import annotations

from typing import Callable, Iterable

Formatter = Callable[[float | int | None], str]
MISSING = "-"


def _digits(values: list[float]) -> int:
    if values and all(float(v).is_integer() for v in values):
        return 0
    top = max((abs(v) for v in values), default=0.0)
    for digits, bound in ((4, 10), (3, 100), (2, 1000), (1, 10_000)):
        if top < bound:
            return digits
    return 0


def column_format(values: Iterable[float | int | None], *, digits: int | None = None) -> Formatter:
    """A formatter shared by every cell (and interval bound) of one column."""
    present = [float(v) for v in values if v is not None]
    d = _digits(present) if digits is None else digits

    def fmt(v: float | int | None) -> str:
        return MISSING if v is None else f"{float(v):,.{d}f}"
    return fmt


def params_format(values: Iterable[int | None]) -> Formatter:
    """Parameter counts in one unit for the column (the unit of its largest value)."""
    present = [v for v in values if v is not None]
    top = max(present, default=0)
    unit, size = next(((u, s) for u, s in (("B", 1e9), ("M", 1e6), ("K", 1e3)) if top >= s), ("", 1.0))
    if not unit:
        return lambda v: MISSING if v is None else f"{v:,d}"
    return lambda v: MISSING if v is None else f"{v / size:,.1f}{unit}"
