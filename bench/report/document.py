"""The report as blocks (headings, paragraphs, tables, figures) and its markdown rendering."""

from __future__ import annotations

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
class Paragraph:
    """Plain text; `items` makes it a bullet list instead."""

    text: str = ""
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Link:
    """A table cell or list item that links: its text and a path relative to the report's folder."""

    text: str
    href: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Table:
    """A table of display strings (or Links), with the CSV holding its numbers (relative path) when there is one.

    `folded` names a long table that the page shows folded under that line until the reader opens it."""

    frame: pd.DataFrame
    csv: str = ""
    folded: str = ""


Block = Heading | Paragraph | Table | Figure


def _cell(value: object) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"[{text}]({value.href})" if isinstance(value, Link) else text


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table."""
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def to_markdown(blocks: list[Block], out_dir: Path) -> str:
    """REPORT.md text; figures link their PNG relative to out_dir."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append("#" * block.level + " " + block.text)
        elif isinstance(block, Paragraph):
            lines = ([block.text] if block.text else []) + [f"- {item}" for item in block.items]
            parts.append("\n".join(lines))
        elif isinstance(block, Table):
            text = markdown_table(block.frame) + (f"\n\nNumbers: [{block.csv}]({block.csv})" if block.csv else "")
            if block.folded:
                text = f"<details><summary>{block.folded}</summary>\n\n{text}\n\n</details>"
            parts.append(text)
        else:
            png = block.png.relative_to(out_dir).as_posix()
            svg = block.svg.relative_to(out_dir).as_posix()
            parts.append(f"![{block.caption}]({png})\n\n*{block.caption}* ([SVG]({svg}))")
    return "\n\n".join(parts) + "\n"
