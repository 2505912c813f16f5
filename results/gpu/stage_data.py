"""Writes compact copies of CIFAR-10 and the malaria subset that the harness's own adapters read unchanged.

- cifar10-jpeg.zip: the first CIFAR_TRAIN_PER_CLASS training and CIFAR_TEST_PER_CLASS test images of each
  class, the JPEG files copied byte for byte (train/<class>/, test/<class>/): the pixels are those the harness
  decodes from the whole set, about 1 KB an image.
- malaria-cells-subset.zip: every cell of the subset resized to 64 px exactly as the malaria adapter does
  (PIL, bilinear) and stored as PNG under its own name (cell_images/<class>/), so the patient split still
  finds its codes; the adapter leaves a 64 x 64 image as it is, so the arrays equal those of the original zip
  at the default size=64, for a quarter of the bytes.

Usage: python results/gpu/stage_data.py SOURCE_DIR OUT_DIR
"""

from __future__ import annotations

import io
import os
import re
import sys
import zipfile
from pathlib import Path

from PIL import Image

from bench.datasets.images import RESAMPLE, decode
from bench.datasets.malaria import DEFAULT_SIZE

TRAIN_PER_CLASS = int(os.environ.get("CIFAR_TRAIN_PER_CLASS", "1000"))
TEST_PER_CLASS = int(os.environ.get("CIFAR_TEST_PER_CLASS", "200"))
CIFAR_FILE = re.compile(r"^(train|test)/([^/]+)/(\d+)\.jpg$")


def cifar10_cut(source: Path, out: Path) -> int:
    """Copies the first images of each class (by file number); returns how many."""
    keep = {"train": TRAIN_PER_CLASS, "test": TEST_PER_CLASS}
    written = 0
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            match = CIFAR_FILE.match(info.filename)
            if match and int(match.group(3)) < keep[match.group(1)]:
                dst.writestr(info.filename, src.read(info))  # JPEG does not deflate: stored as it is
                written += 1
    return written


def malaria_64px(source: Path, out: Path) -> int:
    """Every PNG cell at 64 px, as the adapter would decode it; returns how many."""
    written = 0
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            if not info.filename.lower().endswith(".png"):
                continue  # Thumbs.db and folders: the adapter skips them as well
            pixels = decode(src.read(info), DEFAULT_SIZE, info.filename).pixels
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, "PNG", optimize=True)
            dst.writestr(info.filename, buffer.getvalue())
            written += 1
    return written


def main(source_dir: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    assert RESAMPLE == Image.Resampling.BILINEAR  # what the docstring promises
    n = cifar10_cut(source_dir / "cifar10-jpeg.zip", out_dir / "cifar10-jpeg.zip")
    print(f"cifar10-jpeg.zip: {n} images")
    n = malaria_64px(source_dir / "malaria-cells-subset.zip", out_dir / "malaria-cells-subset.zip")
    print(f"malaria-cells-subset.zip: {n} cells at {DEFAULT_SIZE} px")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
