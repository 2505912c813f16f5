"""report.html is built for a phone as well as a desktop: tables scroll in their own box, images scale, a viewport.

These read the page's structure and style, so they run without a browser; test_html_render checks the layout itself
in headless Chromium where one is installed.
"""

import re
from html.parser import HTMLParser

import pandas as pd

from bench.report.document import Heading, Paragraph, Table
from bench.report.html import NARROW_PX, STYLE, to_html

VOID = {"meta", "img", "br", "hr", "input", "link"}


class _Tree(HTMLParser):
    """Each table's enclosing element, and the viewport meta's content."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.table_parents: list[tuple[str, dict[str, str]]] = []
        self.viewport: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "meta" and attributes.get("name") == "viewport":
            self.viewport = attributes.get("content", "")
        if tag == "table":
            self.table_parents.append(self.stack[-1])
        if tag not in VOID:
            self.stack.append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID:
            assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
            self.stack.pop()


def _parse(page: str) -> _Tree:
    tree = _Tree()
    tree.feed(page)
    tree.close()
    assert not tree.stack, f"unclosed: {tree.stack}"
    return tree


def _rule(selector: str) -> str:
    """The declarations of STYLE's first top-level rule for exactly `selector`, whitespace removed."""
    match = re.search(r"(?:^|})\s*" + re.escape(selector) + r"\s*\{([^}]*)\}", STYLE)
    assert match, f"no rule for {selector!r} in STYLE"
    return re.sub(r"\s+", "", match.group(1))


def test_every_table_sits_in_its_own_sideways_scrolling_box(report_dir):
    out, _ = report_dir
    tree = _parse((out / "report.html").read_text())
    assert len(tree.table_parents) >= 3
    for tag, attributes in tree.table_parents:
        assert tag == "div" and "table-scroll" in attributes.get("class", "").split()
        # A scrollable region a keyboard can reach and a screen reader can name.
        assert attributes.get("tabindex") == "0" and attributes.get("role") == "region" and attributes["aria-label"]
    box = _rule(".table-scroll")
    assert "overflow-x:auto" in box and "max-width:100%" in box


def test_page_has_a_device_width_viewport(report_dir):
    out, _ = report_dir
    viewport = _parse((out / "report.html").read_text()).viewport
    assert viewport is not None
    assert {part.strip() for part in viewport.split(",")} >= {"width=device-width", "initial-scale=1"}


def test_images_scale_down_to_the_viewport():
    img = _rule("img")
    assert "max-width:100%" in img and "height:auto" in img
    assert "text-size-adjust:100%" in _rule("html")  # phones keep the font size the page sets
    assert re.search(r"body\{[^}]*font-size:16px", re.sub(r"\s+", "", STYLE))


def test_a_wide_table_is_wrapped_and_its_label_escaped():
    wide = pd.DataFrame([[f"value {i}" for i in range(30)]], columns=[f"column {i}" for i in range(30)])
    page = to_html(
        [Heading(1, "Title"), Paragraph("text", ("a", "b")), Table(wide, csv='tables/"wide" & <odd>.csv'), Table(wide)],
        "Title",
    )
    tree = _parse(page)
    assert [attributes["aria-label"] for _, attributes in tree.table_parents] == [
        'Table: tables/"wide" & <odd>.csv',
        "Table",
    ]
    assert page.count('<div class="table-scroll"') == page.count("<table>") == 2
    assert ('<p class="csv">Numbers: <a href="tables/&quot;wide&quot; &amp; &lt;odd&gt;.csv">'
            'tables/&quot;wide&quot; &amp; &lt;odd&gt;.csv</a></p>') in page


def test_on_a_narrow_screen_each_row_is_a_stack_of_cells_named_by_their_column():
    frame = pd.DataFrame([["a", "b"]], columns=["System", 'Odd "name"'])
    page = to_html([Table(frame)], "Title")
    assert '<td data-label="System">a</td><td data-label="Odd &quot;name&quot;">b</td>' in page
    assert NARROW_PX >= 390  # a phone's width is narrow
    narrow = re.search(rf"@media \(max-width: {NARROW_PX}px\) \{{(.*?)\n\}}", STYLE, re.S)
    assert narrow
    rules = re.sub(r"\s+", "", narrow.group(1))
    assert "td::before{content:attr(data-label)" in rules and "tr,td{display:block" in rules


def test_headings_get_the_anchors_the_contents_link_to():
    from bench.report.document import Contents

    page = to_html([Heading(1, "Title"), Contents(), Heading(2, "Cost: per run"), Heading(3, "Figures"),
                    Heading(2, "Cost: per run")], "Title")
    assert '<h2 id="cost-per-run">' in page and '<h2 id="cost-per-run-1">' in page
    assert '<a href="#cost-per-run">Cost: per run</a>' in page and '<a href="#figures">' in page
    assert '<a href="#cost-per-run-1">' in page
