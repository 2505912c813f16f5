"""The report as blocks (headings, paragraphs, tables, figures) and its markdown rendering."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.report.plots import Figure


@dataclass(frozen=True)
class Heading:
    """A section title; level 1 is the document's title."""

    level: int
    text: str


@dataclass(frozen=True)
class Link:
    """Text that links to a path relative to the report's folder (a table cell, a list item)."""

    text: str
    href: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Links:
    """Several links in one table cell, e.g. a configuration's run folders."""

    links: tuple[Link | str, ...]  # text where there is nothing to link to

    def __str__(self) -> str:
        return " ".join(str(link) for link in self.links)


@dataclass(frozen=True)
class Paragraph:
    """Plain text; `items` makes it a bullet list instead (an item may be a Link). `kind` names what it is for the
    page's style: 'answer' (the report's answer, first), 'caveats' (what to read it with), or '' for plain text."""

    text: str = ""
    items: tuple[str | Link, ...] = ()
    kind: str = ""


@dataclass(frozen=True)
class Table:
    """A table of display strings (or Links), with the CSV holding its numbers (relative path) when there is one.

    `folded` names a long table that the page shows folded under that line until the reader opens it."""

    frame: pd.DataFrame
    csv: str = ""
    folded: str = ""


@dataclass(frozen=True)
class Contents:
    """The table of contents: a link to every section (levels 2 and 3) of the document it is in."""


@dataclass(frozen=True)
class Row:
    """Blocks shown side by side where the page is wide enough (a figure and its table), one after another
    elsewhere."""

    blocks: tuple[Heading | Paragraph | Table | Figure, ...]


Block = Heading | Paragraph | Table | Figure | Contents | Row


def anchors(blocks: list[Block]) -> Iterator[tuple[Heading, str]]:
    """Every heading (in rows too) with its anchor as GitHub names it: lower case, punctuation dropped, spaces as
    hyphens, '-1', '-2' after a repeated one."""
    seen: dict[str, int] = {}
    for block in blocks:
        for inner in block.blocks if isinstance(block, Row) else (block,):
            if not isinstance(inner, Heading):
                continue
            slug = re.sub(r"[^\w\- ]", "", inner.text.lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            yield inner, slug if n == 0 else f"{slug}-{n}"


def contents(blocks: list[Block]) -> list[tuple[int, str, str]]:
    """(level, text, anchor) of the sections a table of contents lists: those after it (levels 2 and 3)."""
    start = next((n for n, b in enumerate(blocks) if isinstance(b, Contents)), 0)
    after = {id(h) for b in blocks[start:] for h in (b.blocks if isinstance(b, Row) else (b,))}
    return [(h.level, h.text, anchor) for h, anchor in anchors(blocks) if h.level in (2, 3) and id(h) in after]


def _text(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _cell(value: object) -> str:
    if isinstance(value, Links):
        return " ".join(_cell(link) for link in value.links)
    if isinstance(value, Link):
        return f"[{_text(value.text)}]({value.href})"
    return _text(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table."""
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _markdown_block(block: Block, out_dir: Path, toc: list[tuple[int, str, str]]) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + block.text
    if isinstance(block, Paragraph):
        lines = ([block.text] if block.text else []) + [f"- {_cell(item)}" for item in block.items]
        return "\n".join(lines)
    if isinstance(block, Table):
        text = markdown_table(block.frame) + (f"\n\nNumbers: [{block.csv}]({block.csv})" if block.csv else "")
        return f"<details><summary>{block.folded}</summary>\n\n{text}\n\n</details>" if block.folded else text
    if isinstance(block, Contents):
        return "**Contents**\n\n" + "\n".join(f"{'  ' * (level - 2)}- [{text}](#{anchor})"
                                               for level, text, anchor in toc)
    if isinstance(block, Row):
        return "\n\n".join(_markdown_block(b, out_dir, toc) for b in block.blocks)
    png = block.png.relative_to(out_dir).as_posix()
    svg = block.svg.relative_to(out_dir).as_posix()
    return f"![{block.caption}]({png})\n\n*{block.caption}* ([SVG]({svg}), [PNG]({png}))"


def to_markdown(blocks: list[Block], out_dir: Path) -> str:
    """REPORT.md text; figures show their PNG and link both files, relative to out_dir."""
    toc = contents(blocks)
    return "\n\n".join(_markdown_block(b, out_dir, toc) for b in blocks) + "\n"
