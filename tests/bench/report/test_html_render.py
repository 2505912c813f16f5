"""report.html in a real browser, headless Chromium (skipped where none is installed): nothing wider than the
viewport, and the first screen holds the answer, the headline figure and its table, at a laptop's size and a phone's.

Chromium's own flags drive it (--dump-dom), so nothing but the system browser is needed: the report is laid out in an
iframe of the viewport's size, and a script in the wrapper page writes the boxes it measured into the DOM that
--dump-dom prints."""

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from bench.report import write_report

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
NO_BROWSER = "no Chromium installed (apt-get install chromium)"
RENDER_TIMEOUT_S = 90  # a cold headless start on a busy 2-core machine takes several seconds
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]
MIN_WINDOW_WIDTH = 500  # headless Chromium widens a narrower --window-size to this (seen in Chromium 156)
LAPTOP, PHONE = (1366, 768), (390, 844)
RESULTS = Path(__file__).resolve().parents[3] / "results"
# Committed studies laid out too: one with four data sets and four contenders, one without the baseline.
COMMITTED = ("example", "distributed")
MAX_GAP_PX = 120  # on a phone, between the answer and the first figure: the data set's heading

# Reads the layout of the report in the iframe once everything (figures included) has loaded, and writes it into the
# wrapper's DOM. The srcdoc frame shares the wrapper's origin, so its document is readable.
PROBE = """<script>
window.addEventListener("load", function () {
  var frame = document.getElementById("report"), doc = frame.contentDocument, root = doc.documentElement;
  var width = root.clientWidth;
  var box = function (e) {
    if (!e) { return null; }
    var r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
  };
  var past = function (e) { return e.getBoundingClientRect().right > width + 0.5; };
  var boxes = Array.prototype.slice.call(doc.querySelectorAll(".table-scroll"));
  var lead = doc.querySelector(".lead");
  var leadTable = lead && lead.querySelector("table");
  var firstCell = leadTable && leadTable.querySelector("tbody td");
  var answer = doc.querySelector(".answer li");
  var answers = doc.querySelector(".answer");
  var first = doc.querySelector(".first");
  var blocks = Array.prototype.slice.call(doc.body.children).concat(
    first ? Array.prototype.slice.call(first.children) : []).filter(function (e) {
      return e.tagName !== "H1" && e !== first && e !== answers;
    });
  var answerFirst = !!answers && blocks.every(function (e) {
    return e.getBoundingClientRect().top >= answers.getBoundingClientRect().bottom - 1;
  });
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    innerWidth: frame.contentWindow.innerWidth,
    innerHeight: frame.contentWindow.innerHeight,
    clientWidth: width,
    scrollWidth: Math.max(root.scrollWidth, doc.body.scrollWidth),
    tables: doc.querySelectorAll("table").length,
    tablesInBoxes: doc.querySelectorAll(".table-scroll > table").length,
    boxesPastViewport: boxes.filter(past).length,
    boxesScrolling: boxes.filter(function (b) { return b.scrollWidth > b.clientWidth + 1; }).length,
    stackedCells: firstCell ? frame.contentWindow.getComputedStyle(firstCell).display : null,
    images: doc.images.length,
    imagesLoaded: Array.prototype.filter.call(doc.images, function (i) { return i.complete && i.naturalWidth; }).length,
    imagesPastViewport: Array.prototype.filter.call(doc.images, past).length,
    answer: box(answer),
    answerText: answer ? answer.textContent : "",
    answerFirst: answerFirst,
    answers: box(answers),
    figure: box(lead && lead.querySelector("figure img")),
    tableHead: box(leadTable && leadTable.querySelector("thead")),
    tableFirstRow: box(leadTable && leadTable.querySelector("tbody tr")),
    links: Array.prototype.map.call(doc.querySelectorAll("a[href]"), function (a) { return a.getAttribute("href"); })
  });
  document.body.appendChild(out);
});
</script>"""


def _layout_at(page_path, size, tmp_path) -> dict:
    """The layout of the page in a viewport of `size` (width, height) px: an iframe that size, as a window cannot
    be narrower than 500."""
    width, height = size
    page = page_path.read_text(encoding="utf-8")
    wrapper = tmp_path / f"at-{width}x{height}.html"
    wrapper.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
        f'<iframe id="report" style="display:block;border:0;width:{width}px;height:{height}px" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>{PROBE}</body></html>',
        encoding="utf-8",
    )
    command = [
        CHROMIUM,
        *HEADLESS,
        f"--user-data-dir={tmp_path / f'profile-{width}'}",
        f"--window-size={max(width, MIN_WINDOW_WIDTH)},{height + 100}",
        "--dump-dom",
        wrapper.as_uri(),
    ]
    dom = subprocess.run(command, check=True, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe wrote nothing; Chromium printed {dom[-500:]!r}"
    return json.loads(html.unescape(found.group(1)))


def _within(box: dict | None, layout: dict) -> bool:
    return (box is not None and box["top"] >= 0 and box["left"] >= 0
            and box["bottom"] <= layout["innerHeight"] + 0.5 and box["right"] <= layout["innerWidth"] + 0.5)


@pytest.fixture(scope="module", params=["sample", *COMMITTED])
def page(request, report_dir, tmp_path_factory):
    """A report written by the code under test: of the hand-made sample, or of a committed study's runs.csv."""
    if CHROMIUM is None:
        pytest.skip(NO_BROWSER)
    if request.param == "sample":
        return request.param, report_dir[0]
    out = tmp_path_factory.mktemp(request.param)
    shutil.copy(RESULTS / request.param / "runs.csv", out / "runs.csv")
    write_report(out)
    return request.param, out


@pytest.fixture(scope="module", params=[LAPTOP, PHONE], ids=["laptop", "phone"])
def layout(request, page, tmp_path_factory):
    name, out = page
    return request.param, _layout_at(out / "report.html", request.param, tmp_path_factory.mktemp("chromium")), name


@pytest.mark.skipif(CHROMIUM is None, reason=NO_BROWSER)
def test_report_html_renders_in_headless_chromium(report_dir, tmp_path):
    out, _ = report_dir
    shot = tmp_path / "report.png"
    command = [
        CHROMIUM,
        *HEADLESS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1366,768",
        f"--screenshot={shot}",
        (out / "report.html").as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=RENDER_TIMEOUT_S)
    with Image.open(shot) as image:
        assert image.size == LAPTOP
        # Text, table rules and a figure give many colours; a failed page is a flat error screen.
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 200


def test_the_laid_out_size_is_the_one_asked_for(layout):
    (width, height), found, _ = layout
    assert (found["innerWidth"], found["innerHeight"]) == (width, height)
    assert 0 < found["clientWidth"] <= width


def test_nothing_is_wider_than_the_viewport(layout):
    _, found, _ = layout
    # Neither the page nor any table scrolls sideways: tables wrap their cells, or stack them on a phone.
    assert found["scrollWidth"] <= found["clientWidth"], found
    assert found["tables"] >= 3 and found["tablesInBoxes"] == found["tables"]
    assert found["boxesPastViewport"] == 0 and found["boxesScrolling"] == 0, found
    assert found["images"] >= 3 and found["imagesLoaded"] == found["images"]
    assert found["imagesPastViewport"] == 0


def test_the_first_screen_holds_the_answer_the_headline_figure_and_its_table(layout):
    (width, _), found, name = layout
    # The answer comes straight after the title, whole, and names its data set.
    assert found["answerFirst"]
    assert _within(found["answer"], found), found["answer"]
    assert re.match(r"(On )?(cifar10|digits|malaria|mnist) \(", found["answerText"]), found["answerText"]
    if width < 600:
        # A phone's first screen holds the answer, a sentence per data set; the first figure comes straight after
        # it (only its data set's name between), then its table, a row as a stack of cells named by their column.
        assert found["stackedCells"] != "table-cell"
        assert 0 <= found["figure"]["top"] - found["answers"]["bottom"] <= MAX_GAP_PX, found
        assert found["figure"]["bottom"] - found["figure"]["top"] <= found["innerHeight"] / 2
        assert 0 <= found["tableFirstRow"]["top"] - found["figure"]["bottom"] <= found["innerHeight"], found
    else:
        assert _within(found["figure"], found), found["figure"]
        # The table's header and first row, whole.
        assert found["stackedCells"] == "table-cell"
        assert _within(found["tableHead"], found) and _within(found["tableFirstRow"], found), found


def test_links_point_at_the_files_beside_the_report(layout, page):
    _, out = page
    _, found, _ = layout
    files = [h for h in found["links"] if not h.startswith("#")]
    assert any(h.endswith(".csv") for h in files) and any(h.endswith(".svg") for h in files)
    if (out / "runs").is_dir():  # the sample keeps run folders; a copied runs.csv alone has none to link
        assert any(h.startswith("runs/") for h in files)
    for href in files:
        assert (out / href).exists(), href
    anchors = [h for h in found["links"] if h.startswith("#")]
    assert len(anchors) >= 4  # the table of contents
