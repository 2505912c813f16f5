"""report.html renders in headless Chromium (skipped where Chromium is not installed)."""

import html
import json
import re
import shutil
import subprocess

import pytest
from PIL import Image

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
RENDER_TIMEOUT_S = 60  # a cold headless start on a busy 2-core machine takes a few seconds
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MIN_WINDOW_WIDTH = 500  # headless Chromium widens a narrower --window-size to this (seen in Chromium 156)

# Reads the layout of the report in the iframe once everything (figures included) has loaded, and writes it into the
# wrapper's DOM, which --dump-dom prints. The srcdoc frame shares the wrapper's origin, so its document is readable.
PROBE = """<script>
window.addEventListener("load", function () {
  var frame = document.getElementById("report"), doc = frame.contentDocument, root = doc.documentElement;
  var width = root.clientWidth;
  var past = function (e) { return e.getBoundingClientRect().right > width + 0.5; };
  var boxes = Array.prototype.slice.call(doc.querySelectorAll(".table-scroll"));
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    innerWidth: frame.contentWindow.innerWidth,
    clientWidth: width,
    scrollWidth: Math.max(root.scrollWidth, doc.body.scrollWidth),
    tables: doc.querySelectorAll("table").length,
    tablesInBoxes: doc.querySelectorAll(".table-scroll > table").length,
    boxesPastViewport: boxes.filter(past).length,
    boxesScrolling: boxes.filter(function (b) { return b.scrollWidth > b.clientWidth; }).length,
    images: doc.images.length,
    imagesLoaded: Array.prototype.filter.call(doc.images, function (i) { return i.complete && i.naturalWidth; }).length,
    imagesPastViewport: Array.prototype.filter.call(doc.images, past).length
  });
  document.body.appendChild(out);
});
</script>"""


def _layout_at(page_path, width, tmp_path) -> dict:
    """The layout of the page in a `width`-px viewport: an iframe that wide, as a window cannot be narrower than 500."""
    page = page_path.read_text(encoding="utf-8")
    wrapper = tmp_path / f"at-{width}.html"
    wrapper.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
        f'<iframe id="report" style="display:block;border:0;width:{width}px;height:2000px" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>{PROBE}</body></html>',
        encoding="utf-8",
    )
    command = [
        CHROMIUM,
        *HEADLESS,
        f"--user-data-dir={tmp_path / f'profile-{width}'}",
        f"--window-size={max(width, MIN_WINDOW_WIDTH)},2000",
        "--dump-dom",
        wrapper.as_uri(),
    ]
    dom = subprocess.run(command, check=True, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe wrote nothing; Chromium printed {dom[-500:]!r}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_report_html_renders_in_headless_chromium(report_dir, tmp_path):
    out, _ = report_dir
    shot = tmp_path / "report.png"
    command = [
        CHROMIUM,
        *HEADLESS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2000",
        f"--screenshot={shot}",
        (out / "report.html").as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=RENDER_TIMEOUT_S)
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        # Text, table rules and a figure give many colours; a failed page is a flat error screen.
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 200


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
@pytest.mark.parametrize("width", [390, 1366], ids=["phone", "desktop"])
def test_nothing_is_wider_than_the_viewport(report_dir, tmp_path, width):
    out, _ = report_dir
    layout = _layout_at(out / "report.html", width, tmp_path)
    assert layout["innerWidth"] == width  # the page was laid out at the width asked for
    assert 0 < layout["clientWidth"] <= width
    # The page itself never scrolls sideways: wide tables scroll inside their own box, figures shrink to fit.
    assert layout["scrollWidth"] <= layout["clientWidth"], layout
    assert layout["tables"] >= 3 and layout["tablesInBoxes"] == layout["tables"]
    assert layout["boxesPastViewport"] == 0
    assert layout["images"] >= 5 and layout["imagesLoaded"] == layout["images"]
    assert layout["imagesPastViewport"] == 0
    if width < 500:
        # The sample's summary tables are wider than a phone, so this width exercises the scrolling boxes.
        assert layout["boxesScrolling"] >= 1
