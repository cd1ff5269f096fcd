"""A static, self-contained ``compare.html``: the metric tables, the flipped items with image
thumbnails, refusals and cost.

No script and no external resource: a Content-Security-Policy allows only inline CSS and
``data:`` images.  Every string from a results or predictions file (model names, model
outputs, references, meta) goes through :func:`html.escape`; model text is never HTML.
Thumbnails are ``data:image/png`` URIs built by :mod:`mmbench.compare.taskdata`; without the
task's data the page says so and shows the lines' fields.
"""

from __future__ import annotations

import html
from typing import Any

from mmbench.compare.report import (COST_HEADER, METRIC_HEADER, cost_rows, flip_summary, fmt_value, legend,
                                    metric_cells, title)

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1500px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.l,th.l{text-align:left}td.text{text-align:left;max-width:22em;overflow-wrap:anywhere}
.better{color:#106b21;font-weight:bold}.worse{color:#a11;font-weight:bold}
.note{color:#7a4b00;margin:.2em 0}.meta{color:#555}.scroll{overflow-x:auto;max-width:100%}
img.thumb{width:64px;height:64px;object-fit:contain;image-rendering:pixelated;border:1px solid #ccc}
details{margin:.4em 0}summary{cursor:pointer;font-weight:bold}
"""

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; connect-src 'none'; "
        "form-action 'none'; base-uri 'none'")


def e(value: Any) -> str:
    """HTML-escape anything (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[str]], *, left: set[int], cls: str = "",
           styles: list[str] | None = None) -> str:
    head = "".join(f'<th class="{"l" if i in left else ""}">{e(h)}</th>' for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        tds = []
        for i, cell in enumerate(row):
            css = "l" if i in left else ""
            if styles and i == len(row) - 1 and styles[r]:
                css += f" {styles[r]}"
            tds.append(f'<td class="{css.strip()}">{e(cell)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(body) + "</tbody></table></div>")


def _side(side: dict[str, Any]) -> str:
    text = f"error: {side['error']}" if side["error"] else (side["prediction"] if side["prediction"] is not None
                                                            else side["raw_output"])
    raw = "" if side["raw_output"] in (None, side["prediction"]) else \
        f'<div class="meta">raw: {e(side["raw_output"])}</div>'
    return f"{e(text)} <span class=\"meta\">({e(fmt_value(side['score']))})</span>{raw}"


def _flips(task: str, t: dict[str, Any], thumbs: dict[str, str], kind: str, heading: str) -> str:
    items = t["flips"]["items"][kind]
    total = t["flips"][kind]
    if not total:
        return f"<p>{e(heading)}: none.</p>"
    shown = f" (first {len(items)} of {total})" if len(items) < total else f" ({total})"
    rows = []
    for it in items:
        uri = thumbs.get(it["id"])
        img = (f'<img class="thumb" src="{e(uri)}" alt="image {e(it["unit"])}">' if uri and uri.startswith(
            "data:image/png;base64,") else '<span class="meta">no image</span>')
        question = e(it["question"]) if it["question"] is not None else \
            f'<span class="meta">prompt {e(it["prompt_hash"])}</span>'
        meta = ", ".join(f"{k}={v}" for k, v in it["meta"].items() if k != "image_id")
        refs = "; ".join(it["references"])
        rows.append(f'<tr data-id="{e(it["id"])}"><td class="l">{img}</td><td class="text">{e(it["id"])}</td>'
                    f'<td class="text">{question}</td><td class="text">{_side(it["base"])}</td>'
                    f'<td class="text">{_side(it["candidate"])}</td><td class="text">{e(refs)}</td>'
                    f'<td class="text">{e(meta)}</td></tr>')
    head = "".join(f"<th class=\"l\">{h}</th>" for h in ("image", "id", "question / prompt", "base", "candidate",
                                                          "references", "category"))
    return (f'<details open class="flips {kind}"><summary>{e(heading)}{e(shown)}</summary>'
            f'<div class="scroll"><table class="flips"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></div></details>")


def _categories(t: dict[str, Any]) -> str:
    out = []
    for field, table in t["flips"]["by_category"].items():
        rows = [[v, str(c["n"]), str(c["to_correct"]), str(c["to_wrong"]), str(c["to_correct"] - c["to_wrong"])]
                for v, c in table.items()]
        out.append(_table([field, "n", "wrong → right", "right → wrong", "net"], rows, left={0}))
    return "".join(out)


def to_html(result: dict[str, Any]) -> str:
    """The whole page as one string."""
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>mmbench compare</title><style>{_CSS}</style></head><body>",
           f"<h1>Comparison with {e(result['base']['name'])}</h1>",
           f'<p class="meta">{e(legend(result))}</p>']
    thumbs_all = result.get("thumbnails", {})
    for label, entry in result["candidates"].items():
        out.append(f'<section class="candidate"><h2>{e(title(result, label))}</h2>')
        if entry["relation"]:
            out.append(f'<p class="note">{e(entry["relation"])}</p>')
        for task, t in entry["tasks"].items():
            out.append(f'<section class="task" id="{e(label)}--{e(task)}"><h3>{e(task)} '
                       f'<span class="meta">(n = {e(t["n"])}, fingerprint {e(t["fingerprint_hash"])})</span></h3>')
            out += [f'<p class="note">{e(n)}</p>' for n in t["notes"]]
            rows = [metric_cells(m, r) for m, r in t["metrics"].items()]
            styles = [r["verdict"] if r["verdict"] in ("better", "worse") else "" for r in t["metrics"].values()]
            out.append(_table(METRIC_HEADER, rows, left={0, 5, 8}, cls="metrics", styles=styles))
            out += [f'<p class="note">{e(m)}: {e(n)}</p>' for m, r in t["metrics"].items() for n in r["notes"]]
            out.append(f"<p>{e(flip_summary(t))}</p>")
            out.append(_categories(t))
            thumbs = thumbs_all.get(task, {})
            if (t["flipped_to_correct"] or t["flipped_to_wrong"]) and not thumbs:
                out.append('<p class="note">No thumbnails: the task\'s images are not available here.</p>')
            out.append(_flips(task, t, thumbs, "to_wrong", "Right → wrong"))
            out.append(_flips(task, t, thumbs, "to_correct", "Wrong → right"))
            out.append("</section>")
        if entry["refused"]:
            out.append("<h3>Not compared</h3><ul class=\"refused\">")
            out += [f"<li>{e(task)}: {e('; '.join(r['reasons']))}</li>" for task, r in entry["refused"].items()]
            out.append("</ul>")
        for key, what in (("only_in_base", "only in the base"), ("only_in_candidate", "only in the candidate")):
            if entry[key]:
                out.append(f"<p>Tasks {what}: {e(', '.join(entry[key]))}</p>")
        out.append("<h3>Cost</h3>" + _table(COST_HEADER, cost_rows(entry["cost"]), left={0}, cls="cost"))
        out.append("</section>")
    out.append("</body></html>\n")
    return "\n".join(out)
