"""A self-contained ``index.html`` for a leaderboard board (see :mod:`mmbench.leaderboard.tables`).

Inline CSS and JS only, no network (a Content-Security-Policy forbids any fetch).  Every
string that comes from a results file is passed through :func:`html.escape`; the board's
JSON embedded in a ``<script>`` has ``<``, ``>``, ``&`` (and U+2028/9) written as
``\\u003c``-style escapes, so no value can close the script element.  The script only
reorders and hides existing rows (``textContent``, never ``innerHTML``).

Charts are inline SVG drawn here: per comparable group, bars of the ranking metric with
their intervals, and quality against throughput (samples/s, log scale).
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from mmbench.leaderboard.tables import CI_MARK, best_values, fmt_num, fmt_params, fmt_value, group_title

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1500px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin-top:1.6em}
table.lb{border-collapse:collapse;margin:.5em 0;font-variant-numeric:tabular-nums}
table.lb th,table.lb td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
table.lb th{background:#f4f4f4;cursor:pointer;user-select:none}
table.lb th[aria-sort=ascending]::after{content:" \\25B2"}table.lb th[aria-sort=descending]::after{content:" \\25BC"}
table.lb td.model,table.lb th.model{text-align:left;white-space:normal;
  min-width:10em;max-width:24em;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
td.best{font-weight:bold}
.ci{display:block;color:#666;font-size:.85em;font-weight:normal}.note{color:#7a4b00;margin:.2em 0}
.filter{margin:.3em 0;padding:3px 6px;width:20em}.charts{display:flex;flex-wrap:wrap;gap:1.5em}
.meta{color:#555}svg text{font:11px system-ui,sans-serif}
"""

_JS = r"""
(function(){
  function key(td, num){
    var v = td.getAttribute('data-sort');
    if(num){ var x = parseFloat(v); return isNaN(x) ? null : x; }
    return (v === null ? td.textContent : v).toLowerCase();
  }
  document.querySelectorAll('table.lb').forEach(function(table){
    var heads = table.querySelectorAll('thead th');
    heads.forEach(function(th, col){
      th.addEventListener('click', function(){
        var num = th.getAttribute('data-type') === 'num';
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        heads.forEach(function(h){ h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function(a, b){
          var ka = key(a.cells[col], num), kb = key(b.cells[col], num);
          if(ka === null && kb === null) return 0;
          if(ka === null) return 1;
          if(kb === null) return -1;
          var c = ka < kb ? -1 : ka > kb ? 1 : 0;
          return asc ? c : -c;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll('input.filter').forEach(function(input){
    var table = document.getElementById(input.getAttribute('data-table'));
    input.addEventListener('input', function(){
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function(r){
        r.hidden = q !== '' && r.getAttribute('data-model').toLowerCase().indexOf(q) === -1;
      });
    });
  });
})();
"""

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
        "connect-src 'none'; form-action 'none'; base-uri 'none'")


def e(value: Any) -> str:
    """HTML-escape anything (quotes included, so it is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def script_json(obj: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, sort_keys=True)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _num_attr(v: float | int | None) -> str:
    return "" if v is None else repr(float(v))


def _table(task: dict, group: dict, table_id: str) -> str:
    best = best_values(group)
    names = [r["model"] for r in group["rows"]]
    head = ['<th data-type="num">rank</th>', '<th class="model" data-type="text">model</th>']
    head += [f'<th data-type="num">{e(m)}</th>' for m in group["metrics"]]
    extra = [("n", "n_samples"), ("failed", "n_failed"), ("samples/s", "samples_per_s"), ("peak RSS MB", "peak_rss_mb")]
    extra += [("peak GPU MB", "peak_gpu_mb")] if group["has_gpu"] else []
    extra += [("params", "n_parameters")]
    head += [f'<th data-type="num">{e(label)}</th>' for label, _ in extra]
    body = []
    for r in group["rows"]:
        label = r["model"] if names.count(r["model"]) == 1 else f"{r['model']} ({r['run']})"
        tip = f"run {r['run']}: {r['results']}" + "".join(f"\n{w}" for w in r["warnings"])
        cells = [f'<td data-sort="{r["rank"]}">{e(r["rank_label"])}</td>',
                 f'<td class="model" title="{e(tip)}">{e(label)}</td>']
        for m in group["metrics"]:
            cell = r["metrics"].get(m)
            if cell is None:
                cells.append("<td>-</td>")
                continue
            cls = ' class="best"' if cell["value"] == best.get(m) else ""
            ci = ""
            if cell["ci"]:
                mark = CI_MARK if cell["ci_of"] == "per-sample mean" else ""
                title = (f"interval of the mean of per-sample scores ({fmt_value(cell['sample_mean'])})" if mark
                         else "bootstrap interval")
                ci = (f' <span class="ci" title="{e(title)}">[{e(fmt_value(cell["ci"][0]))}, '
                      f'{e(fmt_value(cell["ci"][1]))}]{mark}</span>')
            cells.append(f'<td{cls} data-sort="{_num_attr(cell["value"])}">{e(fmt_value(cell["value"]))}{ci}</td>')
        for _, k in extra:
            v = r[k]
            text = fmt_params(v) if k == "n_parameters" else str(v) if k in ("n_samples", "n_failed") else \
                fmt_num(v, 2 if k == "samples_per_s" else 1)
            cells.append(f'<td data-sort="{_num_attr(v)}">{e(text)}</td>')
        body.append(f'<tr data-model="{e(label)}">' + "".join(cells) + "</tr>")
    return (f'<input class="filter" type="search" placeholder="filter by model name" data-table="{table_id}" '
            f'aria-label="filter {e(task["task"])} by model name">\n'
            f'<div class="scroll"><table class="lb" id="{table_id}"><thead><tr>{"".join(head)}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody></table></div>")


def _bars(group: dict) -> str:
    """Horizontal bars of the ranking metric with interval whiskers."""
    m = group["primary_metric"]
    rows = [r for r in group["rows"] if m in r["metrics"]]
    if not rows:
        return ""
    hi = max(max(r["metrics"][m]["value"], (r["metrics"][m]["ci"] or [0, 0])[1]) for r in rows)
    lo = min(0.0, *(r["metrics"][m]["value"] for r in rows))
    span = (hi - lo) or 1.0
    left, width, step = 170, 260, 22
    x = lambda v: left + (v - lo) / span * width  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}" height="{len(rows) * step + 30}" '
             f'role="img" aria-label="{e(m)} by model"><text x="{left}" y="12">{e(m)}</text>']
    for i, r in enumerate(rows):
        cell, y = r["metrics"][m], 20 + i * step
        name = r["model"] if len(r["model"]) <= 26 else r["model"][:25] + "…"
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{e(name)}'
                     f'<title>{e(r["model"])}</title></text>')
        parts.append(f'<rect x="{x(lo):.1f}" y="{y + 3}" width="{max(x(cell["value"]) - x(lo), 1):.1f}" height="14" '
                     f'fill="#5b8bd0"><title>{e(r["model"])}: {e(fmt_value(cell["value"]))}</title></rect>')
        if cell["ci"]:
            a, b = x(cell["ci"][0]), x(cell["ci"][1])
            parts.append(f'<path d="M{a:.1f} {y + 10}H{b:.1f}M{a:.1f} {y + 5}V{y + 15}M{b:.1f} {y + 5}V{y + 15}" '
                         'stroke="#222" fill="none"/>')
        parts.append(f'<text x="{left + width + 6}" y="{y + 13}">{e(fmt_value(cell["value"]))}</text>')
    return "".join(parts) + "</svg>"


def _scatter(group: dict) -> str:
    """Ranking metric (y) against samples/s (x, log scale)."""
    m = group["primary_metric"]
    pts = [(r["samples_per_s"], r["metrics"][m]["value"], r["model"]) for r in group["rows"]
           if m in r["metrics"] and r["samples_per_s"]]
    if not pts:
        return ""
    w, h, pad = 380, 240, 46
    xs = [math.log10(p[0]) for p in pts]
    ys = [p[1] for p in pts]
    x0, x1 = min(xs) - 0.1, max(xs) + 0.1
    y0, y1 = min(ys), max(ys)
    y0, y1 = (y0 - 0.05 * (y1 - y0 or 1), y1 + 0.05 * (y1 - y0 or 1))
    px = lambda v: pad + (math.log10(v) - x0) / (x1 - x0) * (w - 2 * pad)  # noqa: E731
    py = lambda v: h - pad + 10 - (v - y0) / (y1 - y0) * (h - 2 * pad)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
             f'aria-label="{e(m)} against samples per second">',
             f'<path d="M{pad} {pad - 20}V{h - pad + 10}H{w - pad + 20}" stroke="#888" fill="none"/>',
             f'<text x="{w / 2:.0f}" y="{h - 8}" text-anchor="middle">samples/s (log scale)</text>',
             f'<text x="12" y="{h / 2:.0f}" transform="rotate(-90 12 {h / 2:.0f})" text-anchor="middle">{e(m)}</text>',
             f'<text x="{pad - 4}" y="{py(y1) + 4:.0f}" text-anchor="end">{e(fmt_value(y1))}</text>',
             f'<text x="{pad - 4}" y="{py(y0) + 4:.0f}" text-anchor="end">{e(fmt_value(y0))}</text>']
    for sps, val, name in pts:
        short = name if len(name) <= 18 else name[:17] + "…"
        parts.append(f'<circle cx="{px(sps):.1f}" cy="{py(val):.1f}" r="4" fill="#d0603b"><title>{e(name)}: '
                     f'{e(fmt_value(val))}, {e(fmt_num(sps, 2))} samples/s</title></circle>'
                     f'<text x="{px(sps) + 6:.1f}" y="{py(val) - 5:.1f}">{e(short)}</text>')
    return "".join(parts) + "</svg>"


def to_html(board: dict[str, Any]) -> str:
    """The whole page as one string."""
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>mmbench leaderboard</title><style>{_CSS}</style></head><body>",
           "<h1>mmbench leaderboard</h1>",
           f'<p class="meta">{int(board["level"] * 100)}% bootstrap intervals over images ({board["n_boot"]} '
           f'resamples, seed {board["seed"]}). Bold: best in column. "=" marks adjacent ranks whose difference is '
           f'not significant (paired bootstrap). {CI_MARK}: interval of the mean of per-sample scores (the '
           "corpus value is not such a mean). Click a column header to sort; type in the box to filter by model. "
           "Rows in different groups of a task are not comparable.</p>"]
    n = 0
    family = None
    for task in board["tasks"]:
        if task["family"] != family:
            family = task["family"]
            out.append(f"<h2>{e(family)}</h2>")
        out.append(f'<section class="task"><h3>{e(task["task"])}</h3>')
        for group in task["groups"]:
            n += 1
            out.append(f'<div class="group"><h4>{e(group_title(task, group))} — ranked by '
                       f'{e(group["primary_metric"])}</h4>')
            out += [f'<p class="note">{e(note)}</p>' for note in group["notes"]]
            out.append(_table(task, group, f"t{n}"))
            out.append(f'<div class="charts">{_bars(group)}{_scatter(group)}</div></div>')
        out.append("</section>")
    if board["rejected"]:
        out.append("<h2>Rejected files</h2><ul>")
        out += [f"<li>{e(r['path'])}: {e(r['reason'])}</li>" for r in board["rejected"]]
        out.append("</ul>")
    out.append(f'<script type="application/json" id="leaderboard-data">{script_json(board)}</script>')
    out.append(f"<script>{_JS}</script></body></html>\n")
    return "\n".join(out)
