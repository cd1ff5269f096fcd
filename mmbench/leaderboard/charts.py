"""Inline SVG charts for the leaderboard page, drawn here (no JavaScript library; see
docs/leaderboards.md, "Charts").

Every chart has labelled axes with tick values (linear ticks at 1-2-5 steps, log ticks at
decades and, over a short range, at 2 and 5); labels are placed so that no two overlap and
none leaves the SVG (text widths are estimated generously from the character count, and
labels are clamped inside the drawing).  Every string from a results file is escaped; names
are shortened in the drawing and given whole in a ``<title>``.

* :func:`bars` -- the ranking metric per model with its interval;
* :func:`scatter` -- the ranking metric against samples/s (log scale); runs without a measured
  throughput (served from the cache) sit in a strip of their own, hollow, instead of vanishing;
* :func:`category_bars` -- per-category values (``accuracy/<type>``) of every model of a group.

A chart of one model compares nothing: callers draw charts for groups of two or more.
"""

from __future__ import annotations

import html
import math
from typing import Any, Callable, Sequence

from mmbench.leaderboard.format import column_format

CHAR_W = 6.8       # px per character at 11px, generous (system-ui averages ~6)
LINE_H = 13
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C8C8C", "#332288")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def short(name: str, n: int = 22) -> str:
    return name if len(name) <= n else name[:n - 1] + "…"


def text_width(text: str) -> float:
    return len(text) * CHAR_W + 2


# ------------------------------------------------------------------ ticks

def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering ``[lo, hi]``.

    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9 + step:
        ticks.append(round(t, 12))
        if t >= hi - step * 1e-9:
            break
        t += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values for a log axis over ``[lo, hi]`` (both > 0): decades, plus 2 and 5 when the
    range spans fewer than three decades.

    >>> log_ticks(30, 800)
    [50, 100, 200, 500]
    """
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if b - a < 3 else (1,)
    out = [m * 10 ** k for k in range(a, b + 1) for m in mults if lo <= m * 10 ** k <= hi]
    if len(out) < 2:  # a very short range: its ends
        out = sorted({float(f"{lo:.2g}"), float(f"{hi:.2g}")})
    return [int(t) if float(t).is_integer() else t for t in out]


def tick_label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


# ------------------------------------------------------------------ label placement

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def _overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(points: Sequence[tuple[float, float]], labels: Sequence[str], area: Box,
                 obstacles: Sequence[Box] = ()) -> list[tuple[float, float, str, bool]]:
    """For each point a label position ``(x, y, text-anchor, leader)`` with no two labels
    overlapping each other or a point, and every label inside ``area`` when it fits there.

    Greedy: each label tries beside its point (right, left, above, below), then further up or
    down with a leader line; the first free spot wins, else the least-overlapping one."""
    placed: list[Box] = list(obstacles) + [(x - 5, y - 5, x + 5, y + 5) for x, y in points]
    out = []
    offsets = [(8, 4, "start", False), (-8, 4, "end", False), (0, -9, "middle", False), (0, 17, "middle", False)]
    for dy in (-16, 16, -28, 28, -40, 40, -54, 54, -68, 68, -82, 82, -96, 96):
        offsets += [(12, dy, "start", True), (-12, dy, "end", True), (-40, dy, "end", True)]
    for (px, py), label in zip(points, labels):
        w = text_width(label)
        best, best_cost = None, math.inf
        for dx, dy, anchor, leader in offsets:
            x = px + dx
            x0 = x if anchor == "start" else x - w if anchor == "end" else x - w / 2
            shift = max(area[0] - x0, 0) - max(x0 + w - area[2], 0)  # clamp inside the area
            x0 += shift
            base = py + dy
            box = (x0, base - LINE_H + 3, x0 + w, base + 3)
            inside = area[1] <= box[1] and box[3] <= area[3]
            cost = sum(_overlap(box, other) for other in placed) + (0 if inside else 1e6) + abs(shift) * 0.1
            if cost < best_cost:
                best, best_cost = (x + shift, base, anchor, leader, box), cost
            if cost <= 0:
                break
        x, base, anchor, leader, box = best
        placed.append(box)
        out.append((x, base, anchor, leader))
    return out


# ------------------------------------------------------------------ charts

def _svg(width: float, height: float, label: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{_e(label)}">' + "".join(body) + "</svg>")


def bars(group: dict[str, Any], label_of: Callable[[dict], str]) -> str:
    """Horizontal bars of the ranking metric with interval whiskers and an x axis with ticks."""
    m = group["primary_metric"]
    rows = [r for r in group["rows"] if m in r["metrics"]]
    if len(rows) < 2:
        return ""
    fmt = column_format([r["metrics"][m]["value"] for r in rows])
    vals = [v for r in rows for v in [r["metrics"][m]["value"], *(r["metrics"][m]["ci"] or [])]]
    ticks = nice_ticks(min(0.0, *vals), max(vals))
    lo, hi = ticks[0], ticks[-1]
    names = [short(label_of(r)) for r in rows]
    left = max(text_width(n) for n in names) + 12
    plot_w, step, top = 300, 22, 22
    value_w = max(text_width(fmt(r["metrics"][m]["value"])) for r in rows) + 10
    width = left + plot_w + value_w
    height = top + len(rows) * step + 34
    x = lambda v: left + (v - lo) / ((hi - lo) or 1) * plot_w  # noqa: E731
    axis_y = top + len(rows) * step + 4
    body = [f'<text x="{left:.0f}" y="13" class="ctitle">{_e(m)} by model</text>']
    for t in ticks:
        body.append(f'<path d="M{x(t):.1f} {top - 2}V{axis_y}" class="grid"/>'
                    f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle" class="tick">{_e(tick_label(t))}</text>')
    body.append(f'<path d="M{left:.1f} {axis_y}H{left + plot_w:.1f}" class="axis"/>')
    for i, (r, name) in enumerate(zip(rows, names)):
        cell, y = r["metrics"][m], top + i * step
        body.append(f'<text x="{left - 6:.1f}" y="{y + 13}" text-anchor="end" class="label">{_e(name)}'
                    f'<title>{_e(label_of(r))}</title></text>')
        fill = PALETTE[0] if r["ranked"] else "#bbb"
        body.append(f'<rect x="{x(lo):.1f}" y="{y + 3}" width="{max(x(cell["value"]) - x(lo), 1):.1f}" height="14" '
                    f'fill="{fill}"><title>{_e(label_of(r))}: {_e(fmt(cell["value"]))}</title></rect>')
        if cell["ci"]:
            a, b = x(cell["ci"][0]), x(cell["ci"][1])
            body.append(f'<path d="M{a:.1f} {y + 10}H{b:.1f}M{a:.1f} {y + 5}V{y + 15}M{b:.1f} {y + 5}V{y + 15}" '
                        'stroke="#222" fill="none"/>')
        body.append(f'<text x="{left + plot_w + 6:.1f}" y="{y + 13}" class="label">{_e(fmt(cell["value"]))}</text>')
    return _svg(width, height, f"{m} by model", body)


def scatter(group: dict[str, Any], label_of: Callable[[dict], str]) -> str:
    """The ranking metric (y) against samples/s (x, log scale), ticks on both axes.  Runs without a
    measured samples/s (served from the cache) are drawn hollow in a strip left of the axis."""
    m = group["primary_metric"]
    rows = [r for r in group["rows"] if m in r["metrics"]]
    if len(rows) < 2:
        return ""
    timed = [r for r in rows if r["samples_per_s"]]
    untimed = [r for r in rows if not r["samples_per_s"]]
    ys = [r["metrics"][m]["value"] for r in rows]
    yt = nice_ticks(min(ys), max(ys), 4)
    if len(yt) < 2:
        yt = [yt[0] - 1, yt[0]] if yt else [0, 1]
    y0, y1 = yt[0], yt[-1]
    width, height = 520, 300
    strip = 64 if untimed else 0
    left = max(text_width(tick_label(t)) for t in yt) + 22
    pl, pr, pt, pb = left + strip, width - 10, 24, height - 40  # plot area
    py = lambda v: pb - (v - y0) / ((y1 - y0) or 1) * (pb - pt)  # noqa: E731
    body = [f'<text x="{pl:.0f}" y="13" class="ctitle">{_e(m)} against samples/s</text>']
    for t in yt:
        body.append(f'<path d="M{left:.1f} {py(t):.1f}H{pr}" class="grid"/>'
                    f'<text x="{left - 4:.1f}" y="{py(t) + 4:.1f}" text-anchor="end" class="tick">'
                    f'{_e(tick_label(t))}</text>')
    body.append(f'<text x="12" y="{(pt + pb) / 2:.0f}" transform="rotate(-90 12 {(pt + pb) / 2:.0f})" '
                f'text-anchor="middle" class="axlabel">{_e(short(m, 30))}</text>')
    points, labels, titles, hollow = [], [], [], []
    if timed:
        sps = [r["samples_per_s"] for r in timed]
        lo, hi = min(sps) / 1.6, max(sps) * 1.6
        xt = log_ticks(lo, hi)
        lo, hi = min(lo, xt[0]), max(hi, xt[-1])
        px = lambda v: pl + 10 + (math.log10(v) - math.log10(lo)) / (math.log10(hi / lo) or 1) * (pr - pl - 20)  # noqa: E731
        for t in xt:
            body.append(f'<path d="M{px(t):.1f} {pt}V{pb}" class="grid"/>'
                        f'<text x="{px(t):.1f}" y="{pb + 14}" text-anchor="middle" class="tick">{_e(tick_label(t))}'
                        '</text>')
        for r in timed:
            points.append((px(r["samples_per_s"]), py(r["metrics"][m]["value"])))
            labels.append(short(label_of(r)) + (" *" if r["throughput"] == "partly cached" else ""))
            titles.append(f'{label_of(r)}: {r["metrics"][m]["value"]:.4g}, {r["samples_per_s"]:,.1f} samples/s'
                          + (" (partly cached)" if r["throughput"] == "partly cached" else ""))
            hollow.append(False)
    body.append(f'<text x="{(pl + pr) / 2:.0f}" y="{height - 8}" text-anchor="middle" class="axlabel">samples/s '
                '(log scale)</text>')
    body.append(f'<path d="M{left:.1f} {pt - 4}V{pb}H{pr}" class="axis"/>')
    if untimed:
        cx = left + strip / 2
        body.append(f'<path d="M{pl:.1f} {pt}V{pb}" class="sep"/>'
                    f'<text x="{cx:.1f}" y="{pb + 14}" text-anchor="middle" class="tick">cached</text>')
        for r in untimed:
            points.append((cx, py(r["metrics"][m]["value"])))
            labels.append(short(label_of(r), 14))
            why = "served from the cache: no samples/s" if r["throughput"] == "cached" else "no samples/s recorded"
            titles.append(f'{label_of(r)}: {r["metrics"][m]["value"]:.4g} ({why})')
            hollow.append(True)
    spots = place_labels(points, labels, (2, pt - 8, width - 2, pb - 2))
    for (x, y), label, title, is_hollow, (lx, ly, anchor, leader) in zip(points, labels, titles, hollow, spots):
        style = 'fill="#fff" stroke="#D55E00" stroke-width="2"' if is_hollow else 'fill="#D55E00"'
        if leader:
            body.append(f'<path d="M{x:.1f} {y:.1f}L{lx:.1f} {ly - 4:.1f}" class="leader"/>')
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" {style}><title>{_e(title)}</title></circle>'
                    f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" class="plabel">{_e(label)}'
                    f'<title>{_e(title)}</title></text>')
    return _svg(width, height, f"{m} against samples per second", body)


def category_bars(group: dict[str, Any], prefix: str, label_of: Callable[[dict], str]) -> str:
    """Grouped bars: one block per category (``prefix/<category>``), one bar per model, a legend."""
    keys = group["categories"].get(prefix) or []
    rows = [r for r in group["rows"] if any(k in r["metrics"] for k in keys)]
    if len(keys) < 2 or not rows:
        return ""
    vals = [r["metrics"][k]["value"] for r in rows for k in keys if k in r["metrics"]]
    fmt = column_format(vals)
    ticks = nice_ticks(min(0.0, *vals), max(vals))
    lo, hi = ticks[0], ticks[-1]
    cats = [k.split("/", 1)[1] for k in keys]
    left = max(text_width(short(c, 18)) for c in cats) + 14
    names = [short(label_of(r), 20) for r in rows]
    legend_rows, legend_x, legend_h = [], 0.0, 0
    width = max(left + 330, 420)
    for name in names:  # wrap legend entries to the chart width
        w = text_width(name) + 22
        if legend_x + w > width - 4:
            legend_x, legend_h = 0.0, legend_h + 1
        legend_rows.append((legend_x, legend_h))
        legend_x += w
    top = 24 + (legend_h + 1) * 16
    bar_h, gap = 11, 8
    block = len(rows) * bar_h + gap
    plot_w = width - left - 60
    axis_y = top + len(keys) * block
    height = axis_y + 22
    x = lambda v: left + (v - lo) / ((hi - lo) or 1) * plot_w  # noqa: E731
    body = [f'<text x="4" y="13" class="ctitle">{_e(prefix)} by category</text>']
    for i, ((lx, lrow), name, r) in enumerate(zip(legend_rows, names, rows)):
        ly = 22 + lrow * 16
        body.append(f'<rect x="{4 + lx:.1f}" y="{ly:.0f}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                    f'<text x="{18 + lx:.1f}" y="{ly + 9:.0f}" class="label">{_e(name)}<title>{_e(label_of(r))}'
                    '</title></text>')
    for t in ticks:
        body.append(f'<path d="M{x(t):.1f} {top - 2}V{axis_y}" class="grid"/>'
                    f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle" class="tick">{_e(tick_label(t))}</text>')
    for ci, (k, cat) in enumerate(zip(keys, cats)):
        y = top + ci * block
        body.append(f'<text x="{left - 6:.1f}" y="{y + block / 2 + 2:.1f}" text-anchor="end" class="label">'
                    f'{_e(short(cat, 18))}<title>{_e(k)}</title></text>')
        for i, r in enumerate(rows):
            if k not in r["metrics"]:
                continue
            v = r["metrics"][k]["value"]
            body.append(f'<rect x="{x(lo):.1f}" y="{y + i * bar_h:.1f}" width="{max(x(v) - x(lo), 1):.1f}" '
                        f'height="{bar_h - 1}" fill="{PALETTE[i % len(PALETTE)]}"><title>{_e(label_of(r))}, '
                        f'{_e(cat)}: {_e(fmt(v))}</title></rect>')
    body.append(f'<path d="M{left:.1f} {axis_y}H{left + plot_w:.1f}" class="axis"/>')
    return _svg(width, height, f"{prefix} by category", body)
