"""report.html renders in headless Chromium (skipped where Chromium is not installed)."""

import shutil
import subprocess

import pytest
from PIL import Image

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
RENDER_TIMEOUT_S = 60  # a cold headless start on a busy 2-core machine takes a few seconds


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_report_html_renders_in_headless_chromium(report_dir, tmp_path):
    out, _ = report_dir
    shot = tmp_path / "report.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
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
