"""The leaderboard page, ``index.html`` (see :mod:`mmbench.leaderboard.tables` for the board).

One HTML file with its CSS and JS inlined (``static/page.css``, ``static/page.js``) and its
charts as inline SVG (:mod:`.charts`); the only other files it reads are the per-sample
chunks and thumbnails the build writes beside it (:mod:`.samples`), loaded as
``<script src>``/``<img src>`` from the page's own folder when a reader opens a model's
samples.  A Content-Security-Policy allows nothing else (no network, no ``fetch``).

Every string that comes from a results file is passed through :func:`html.escape`; JSON
embedded in a ``<script>`` has ``<``, ``>``, ``&`` (and U+2028/9) written as ``\\u003c``-style
escapes, so no value can close the script element.  The script reorders and hides existing
rows and builds the sample browser with ``textContent`` only, never ``innerHTML``.

Per group: the notes, a table (rank, model and the ranking metric stay in view while the rest
scrolls; a first click on a header sorts best first), and -- for two or more models -- bars of
the ranking metric and quality against throughput.  Above the tasks, a summary across tasks of
a family and per-category charts (:mod:`.summary`).
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from mmbench.leaderboard import charts
from mmbench.leaderboard.summary import category_groups, family_summaries
from mmbench.leaderboard.tables import best_values, columns, extra_text, group_title, model_label

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'none'; form-action 'none'; base-uri 'none'")


def _asset(name: str) -> str:
    return resources.files("mmbench.leaderboard").joinpath("static", name).read_text(encoding="utf-8")


def e(value: Any) -> str:
    """HTML-escape anything (quotes included, so it is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def script_json(obj: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">`` (and as a JS expression)."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, sort_keys=True)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _num_attr(v: float | int | None) -> str:
    return "" if v is None else repr(float(v))


def _flags(row: dict) -> str:
    out = []
    for flag in row["flags"]:
        cls = "flag cache" if "cache" in flag and "failed" not in flag else "flag"
        short = flag.split(":")[0] if "cache" in flag else flag.split(" (")[0]
        out.append(f'<span class="{cls}" title="{e(flag)}">{e(short)}</span>')
    return "".join(out)


def _table(task: dict, group: dict, table_id: str, gkey: str, browsable: bool) -> str:
    cols = columns(group)
    best = best_values(group)
    sticky = 3 if len(cols) > 2 and cols[2]["kind"] == "metric" else 2
    head = []
    for i, col in enumerate(cols):
        cls = " ".join(c for c in ("model" if col["kind"] == "model" else "", "stick" if i < sticky else "",
                                   "stick-last" if i == sticky - 1 else "") if c)
        kind = "text" if col["kind"] == "model" else "num"
        hib = col["higher_is_better"]
        title = {True: "higher is better", False: "lower is better"}.get(hib, "") if col["kind"] == "metric" else ""
        head.append(f'<th data-type="{kind}" data-first="{col["first"]}"' + (f' class="{cls}"' if cls else "")
                    + (f' title="{e(title)}"' if title else "") + f">{e(col['label'])}</th>")
    body = []
    for ri, r in enumerate(group["rows"]):
        label = model_label(group, r)
        tip = f"run {r['run']}: {r['results']}" + "".join(f"\n{w}" for w in r["warnings"])
        cells = []
        for i, col in enumerate(cols):
            cls = ["stick"] if i < sticky else []
            cls += ["stick-last"] if i == sticky - 1 else []
            if col["kind"] == "rank":
                title = f' title="not ranked: {e(r["unranked_reason"])}"' if not r["ranked"] else ""
                cells.append(f'<td class="{" ".join(cls)}" data-sort="{_num_attr(r["rank"])}"{title}>'
                             f'{e(r["rank_label"])}</td>')
            elif col["kind"] == "model":
                button = ' <button class="open" type="button" title="open this model\'s samples">samples</button>' \
                    if browsable else ""
                cells.append(f'<td class="{" ".join(["model"] + cls)}" title="{e(tip)}" data-sort="{e(label.lower())}">'
                             f'{e(label)}{_flags(r)}{button}</td>')
            elif col["kind"] == "extra":
                cells.append(f'<td class="{" ".join(cls)}" data-sort="{_num_attr(r[col["key"]])}">'
                             f'{e(extra_text(col, r))}</td>')
            else:
                m = col["key"]
                cell = r["metrics"].get(m)
                if cell is None:
                    cells.append(f'<td class="{" ".join(cls)}">-</td>')
                    continue
                if r["ranked"] and cell["value"] == best.get(m):
                    cls.append("best")
                ci = ""
                if cell["ci"]:
                    ci = (f' <span class="ci" title="bootstrap interval of the value">'
                          f'[{e(col["fmt"](cell["ci"][0]))}, {e(col["fmt"](cell["ci"][1]))}]</span>')
                note = f' title="{e(cell["ci_note"])}"' if cell.get("ci_note") else ""
                cells.append(f'<td class="{" ".join(cls)}" data-sort="{_num_attr(cell["value"])}"{note}>'
                             f'{e(col["fmt"](cell["value"]))}{ci}</td>')
        cells = [c.replace(' class=""', "") for c in cells]
        attrs = f' data-group="{gkey}" data-row="{ri}"' if browsable else ""
        cls = ' class="unranked"' if not r["ranked"] else ""
        body.append(f'<tr data-model="{e(label)}"{attrs}{cls}>' + "".join(cells) + "</tr>")
    return (f'<input class="filter" type="search" placeholder="filter by model name" data-table="{table_id}" '
            f'aria-label="filter {e(task["task"])} by model name">\n'
            f'<div class="scroll"><table class="lb" id="{table_id}"><thead><tr>{"".join(head)}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody></table></div>")


def _label_of(group: dict):
    return lambda row: model_label(group, row)


def _summary(board: dict) -> str:
    fams = family_summaries(board)
    cats = category_groups(board)
    if not fams and not cats:
        return ""
    out = ['<section id="summary"><h2>Summary across tasks</h2>',
           '<p class="meta">Each model\'s rank within each comparable group that ranks two or more models, and the '
           "mean of those ranks. Metric values of different tasks or groups are never averaged: they come from "
           "different data and scales. Ties share the better rank.</p>"]
    for fam in fams:
        out.append(f"<h3>{e(fam['family'])}: {len(fam['tasks'])} tasks</h3>")
        if not fam["columns"]:
            out.append('<p class="one">No task of this family ranks two or more models.</p>')
        else:
            head = "".join(f"<th>{e(c['task'])}" + (f" (group {c['group']})" if c["n_groups"] > 1 else "")
                           + f"<br><span class=\"meta\">rank of {c['n_ranked']}</span></th>" for c in fam["columns"])
            out.append(f'<table class="lb summary"><thead><tr><th class="model" data-type="text" data-first="asc">'
                       f'model</th>{head}<th data-type="num" data-first="asc">mean rank</th>'
                       f'<th data-type="num" data-first="desc">tasks evaluated</th></tr></thead><tbody>')
            for m in fam["models"]:
                ranks = "".join(f'<td data-sort="{_num_attr(x)}">{"-" if x is None else x}</td>' for x in m["ranks"])
                mean = "-" if m["mean_rank"] is None else f"{m['mean_rank']:.2f}"
                out.append(f'<tr data-model="{e(m["model"])}"><td class="model">{e(m["model"])}</td>{ranks}'
                           f'<td data-sort="{_num_attr(m["mean_rank"])}">{mean}</td>'
                           f'<td data-sort="{m["n_tasks"]}">{m["n_tasks"]} of {len(fam["tasks"])}</td></tr>')
            out.append("</tbody></table>")
    if cats:
        out.append("<h3>Per category</h3><div class=\"charts\">")
        for task, group, prefix in cats:
            svg = charts.category_bars(group, prefix, _label_of(group))
            if svg:
                where = task["task"] + (f" (group {group['index']})" if len(task["groups"]) > 1 else "")
                out.append(f"<figure>{svg}<figcaption>{e(where)}</figcaption></figure>")
        out.append("</div>")
    out.append("</section>")
    return "\n".join(out)


_BROWSER = """
<div id="sb" hidden role="dialog" aria-label="samples">
<header><h2></h2><button id="sb-close" type="button">close (Esc)</button></header>
<div class="controls">
<label>model <select id="sb-a"></select></label>
<label>side by side with <select id="sb-b"></select></label>
<label>show <select id="sb-filter">
<option value="all">all samples</option><option value="right">right</option><option value="wrong">wrong</option>
<option value="failed">failed</option><option value="a-right-b-wrong">right here, wrong there</option>
<option value="a-wrong-b-right">wrong here, right there</option><option value="disagree">the two disagree</option>
</select></label>
<label>category <select id="sb-cat"></select></label>
<label>order <select id="sb-sort"><option value="id">as evaluated</option>
<option value="asc">score, lowest first</option><option value="desc">score, highest first</option></select></label>
<span><button id="sb-prev" type="button">previous</button> <button id="sb-next" type="button">next</button></span>
</div>
<div class="notes"></div>
<p class="status"></p>
<div class="list"></div>
</div>
"""


def to_html(board: dict[str, Any], samples: dict[str, Any] | None = None) -> str:
    """The whole page as one string; ``samples`` is :func:`.samples.write_samples`'s index (None: the
    page has no sample browser)."""
    samples = samples or {}
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>mmbench leaderboard</title><style>{_asset('page.css')}</style></head><body>",
           "<h1>mmbench leaderboard</h1>",
           f'<p class="meta">{int(board["level"] * 100)}% bootstrap intervals over images ({board["n_boot"]} '
           f'resamples, seed {board["seed"]}) of each value; corpus metrics that no method resamples (METEOR, '
           'consistency) have none. Bold: best in column. "=" marks adjacent ranks whose difference is not '
           'significant (paired bootstrap); "-": not ranked (no successful samples, or a metric without a '
           'direction). Orange flags: failed samples; blue: served from the cache. Click a column header to '
           "sort (first click: best first); type in the box to filter by model"
           + ("; click a row to browse that model's samples" if samples else "")
           + ". Rows in different groups of a task are not comparable.</p>"]
    out.append(_summary(board))
    n = 0
    family = None
    for task in board["tasks"]:
        if task["family"] != family:
            family = task["family"]
            out.append(f"<h2>{e(family)}</h2>")
        out.append(f'<section class="task"><h3>{e(task["task"])}</h3>')
        for group in task["groups"]:
            n += 1
            gkey = f"g{n}"
            if gkey in samples:
                samples[gkey]["title"] = group_title(task, group).removeprefix(task["task"]).lstrip(" —")
            out.append(f'<div class="group" id="{gkey}"><h4>{e(group_title(task, group))} — ranked by '
                       f'{e(group["primary_metric"])}</h4>')
            out += [f'<p class="note">{e(note)}</p>' for note in group["notes"]]
            out.append(_table(task, group, f"t{n}", gkey, gkey in samples and samples[gkey]["n"] > 0))
            if len([r for r in group["rows"] if group["primary_metric"] in r["metrics"]]) < 2:
                out.append('<p class="one">One model in this group: nothing to chart against.</p></div>')
                continue
            label_of = _label_of(group)
            out.append(f'<div class="charts">{charts.bars(group, label_of)}{charts.scatter(group, label_of)}</div>'
                       "</div>")
        out.append("</section>")
    if board["rejected"]:
        out.append("<h2>Rejected files</h2><ul>")
        out += [f"<li>{e(r['path'])}: {e(r['reason'])}</li>" for r in board["rejected"]]
        out.append("</ul>")
    if samples:
        out.append(_BROWSER)
    out.append(f'<script type="application/json" id="leaderboard-data">{script_json(board)}</script>')
    out.append(f'<script type="application/json" id="samples-index">{script_json(samples)}</script>')
    out.append(f"<script>{_asset('page.js')}</script></body></html>\n")
    return "\n".join(out)
