"""report.html: the whole report in one page, figures inlined as SVG (sharp at any zoom); links to the CSV, SVG,
PNG and run folders beside it work where the page is opened from its results folder."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from bench.report.document import Block, Contents, Heading, Link, Links, Paragraph, Row, Table, anchors, contents
from bench.report.plots import Figure

NARROW_PX = 600  # below this width a table's rows are stacked: one cell a line, named by its column

STYLE = f"""
html {{ -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }}
body {{ font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; font-size: 16px; max-width: 1240px;
       margin: 0 auto; padding: 0.4em 1em 2em; color: #222; line-height: 1.4; overflow-wrap: break-word; }}
h1 {{ font-size: 1.45em; line-height: 1.2; margin: 0.35em 0; }}
h2 {{ font-size: 1.3em; margin-top: 1.6em; }}
h3 {{ font-size: 1.1em; }}
a {{ color: #0b57a4; }}
.answer {{ font-size: 1.05em; margin: 0.3em 0; padding-left: 1.2em; }}
.answer li {{ margin: 0.15em 0; }}
.caveats {{ font-size: 0.85em; color: #444; margin: 0.3em 0 0.6em; padding-left: 1.2em; }}
.lead {{ display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 0.4em 1.2em;
         align-items: start; margin-bottom: 1em; }}
.lead > h2, .lead > h3 {{ grid-column: 1 / -1; margin: 0.2em 0 0; }}
.lead > div:first-of-type {{ grid-row: span 2; }}  /* the figure: its table, then the caveats, beside it */
.lead figure {{ margin: 0; }}
.lead .table-scroll {{ margin-top: 0; }}
.lead table {{ font-size: 0.8em; }}
nav.contents {{ font-size: 0.9em; columns: 2 22em; border-top: 1px solid #ddd; border-bottom: 1px solid #ddd;
                padding: 0.4em 0; }}
nav.contents ul {{ margin: 0; padding-left: 1.2em; }}
.table-scroll {{ max-width: 100%; overflow-x: auto; margin: 0.6em 0; }}
.table-scroll:focus {{ outline: 2px solid #8ab4f8; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.45em; text-align: left; vertical-align: top; }}
td {{ overflow-wrap: break-word; }}
th {{ background: #f1f3f5; }}
tr:nth-child(even) td {{ background: #fafafa; }}
details {{ margin: 0.6em 0; }}
summary {{ cursor: pointer; }}
figure {{ margin: 1em 0 2em; }}
img {{ max-width: 100%; height: auto; }}
figure img {{ display: block; width: 100%; border: 1px solid #eee; box-sizing: border-box; }}
figcaption {{ font-size: 0.85em; color: #555; }}
.csv {{ font-size: 0.85em; color: #555; margin-top: 0; }}
@media (max-width: 900px) {{
  .lead {{ grid-template-columns: minmax(0, 1fr); }}
}}
@media (max-width: {NARROW_PX}px) {{
  body {{ padding: 0 0.75em; }}
  h1 {{ font-size: 1.3em; }}
  h2 {{ font-size: 1.2em; }}
  ul {{ padding-left: 1.2em; }}
  table, tbody, tr, td {{ display: block; width: 100%; box-sizing: border-box; }}
  thead {{ position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }}
  tr {{ border: 1px solid #ccc; margin-bottom: 0.6em; }}
  td {{ border: 0; border-bottom: 1px solid #eee; display: grid; grid-template-columns: minmax(6em, 40%) 1fr;
        gap: 0.5em; }}
  td::before {{ content: attr(data-label); font-weight: 600; color: #444; }}
  tr:nth-child(even) td {{ background: none; }}
}}
"""


def _inline(value: object) -> str:
    """A cell's or item's HTML: links as anchors, anything else as escaped text."""
    if isinstance(value, Links):
        return " ".join(_inline(link) for link in value.links)
    if isinstance(value, Link):
        return f'<a href="{html.escape(value.href, quote=True)}">{html.escape(value.text)}</a>'
    return html.escape(str(value))


def _table(block: Table) -> str:
    headers = [str(c) for c in block.frame.columns]
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    rows = "".join(
        "<tr>" + "".join(f'<td data-label="{html.escape(h, quote=True)}">{_inline(v)}</td>'
                         for h, v in zip(headers, row, strict=True)) + "</tr>"
        for row in block.frame.itertuples(index=False)
    )
    link = f'<a href="{html.escape(block.csv, quote=True)}">{html.escape(block.csv)}</a>'
    note = f'<p class="csv">Numbers: {link}</p>' if block.csv else ""
    # A very long word could still widen a table: the box then scrolls on its own, never the page; focusable and
    # named so that a keyboard can scroll it too.
    label = html.escape(f"Table: {block.csv}" if block.csv else "Table", quote=True)
    table = (
        f'<div class="table-scroll" role="region" tabindex="0" aria-label="{label}">'
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>{note}"
    )
    if block.folded:
        return f"<details><summary>{html.escape(block.folded)}</summary>{table}</details>"
    return table


def _figure(block: Figure, out_dir: Path) -> str:
    data = base64.b64encode(Path(block.svg).read_bytes()).decode("ascii")
    caption = html.escape(block.caption)
    files = " ".join(
        f'<a href="{html.escape(Path(p).relative_to(out_dir).as_posix(), quote=True)}">{kind}</a>'
        for kind, p in (("SVG", block.svg), ("PNG", block.png))
    )
    return (f'<figure><img alt="{caption}" src="data:image/svg+xml;base64,{data}">'
            f"<figcaption>{caption} ({files})</figcaption></figure>")


def _contents(toc: list[tuple[int, str, str]]) -> str:
    items, level = [], 2
    for depth, text, anchor in toc:
        while level < depth:
            items.append("<ul>")
            level += 1
        while level > depth:
            items.append("</ul>")
            level -= 1
        items.append(f'<li><a href="#{html.escape(anchor, quote=True)}">{html.escape(text)}</a></li>')
    items += ["</ul>"] * (level - 2)
    return f'<nav class="contents" aria-label="Contents"><strong>Contents</strong><ul>{"".join(items)}</ul></nav>'


def _block(block: Block, ids: dict[int, str], out_dir: Path, toc: list[tuple[int, str, str]]) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 1), 6)
        anchor = ids.get(id(block), "")
        attribute = f' id="{html.escape(anchor, quote=True)}"' if anchor else ""
        return f"<h{level}{attribute}>{html.escape(block.text)}</h{level}>"
    if isinstance(block, Paragraph):
        kind = f' class="{block.kind}"' if block.kind else ""
        parts = [f"<p{kind}>{html.escape(block.text)}</p>"] if block.text else []
        if block.items:
            parts.append(f"<ul{kind}>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>")
        return "".join(parts)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Contents):
        return _contents(toc)
    if isinstance(block, Row):
        # A heading spans the row (the CSS places it); every other block is a column.
        return '<div class="lead">' + "".join(
            _block(b, ids, out_dir, toc) if isinstance(b, Heading) else f"<div>{_block(b, ids, out_dir, toc)}</div>"
            for b in block.blocks) + "</div>"
    return _figure(block, out_dir)


def to_html(blocks: list[Block], title: str, out_dir: Path | None = None) -> str:
    """The page: figures inlined, so it reads on its own; its links are relative to out_dir (the folder of the
    figures' files), where it is written."""
    ids = {id(h): anchor for h, anchor in anchors(blocks)}
    toc = contents(blocks)
    figures = [b for b in blocks if isinstance(b, Figure)] + [
        i for b in blocks if isinstance(b, Row) for i in b.blocks if isinstance(i, Figure)]
    root = Path(out_dir) if out_dir is not None else (Path(figures[0].svg).parent.parent if figures else Path("."))
    body = [_block(b, ids, root, toc) for b in blocks]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
