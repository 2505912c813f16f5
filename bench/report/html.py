"""report.html: the whole report in one self-contained page, figures inlined as base64 PNG."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from bench.report.document import Block, Heading, Paragraph, Table

STYLE = """
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; font-size: 16px; max-width: 1200px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; overflow-wrap: break-word; }
h1 { font-size: 1.9em; line-height: 1.2; }
.table-scroll { max-width: 100%; overflow-x: auto; margin: 0.8em 0; }
.table-scroll:focus { outline: 2px solid #8ab4f8; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f1f3f5; }
td { white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; }
img { max-width: 100%; height: auto; }
figure img { display: block; border: 1px solid #eee; box-sizing: border-box; }
figcaption { font-size: 0.9em; color: #555; }
.csv { font-size: 0.85em; color: #555; margin-top: 0; }
@media (max-width: 600px) {
  body { margin: 1em auto; padding: 0 0.75em; }
  h1 { font-size: 1.5em; }
  h2 { font-size: 1.3em; }
  ul { padding-left: 1.2em; }
}
"""


def _table(block: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block.frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in block.frame.itertuples(index=False)
    )
    note = f'<p class="csv">Numbers: {html.escape(block.csv)}</p>' if block.csv else ""
    # The box scrolls sideways so that a wide table never widens the page (a phone shows the page's width, not
    # the table's); focusable and named so that a keyboard can scroll it too.
    label = html.escape(f"Table: {block.csv}" if block.csv else "Table", quote=True)
    return (
        f'<div class="table-scroll" role="region" tabindex="0" aria-label="{label}">'
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>{note}"
    )


def to_html(blocks: list[Block], title: str) -> str:
    """The page; it references no file or address, so it opens anywhere on its own."""
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            body.append(f"<h{level}>{html.escape(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            if block.text:
                body.append(f"<p>{html.escape(block.text)}</p>")
            if block.items:
                body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            body.append(_table(block))
        else:
            data = base64.b64encode(Path(block.png).read_bytes()).decode("ascii")
            caption = html.escape(block.caption)
            body.append(
                f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
