"""How images were stored: their file formats, and for lossy ones how lossy (JPEG quality from its tables).

A few files are read per file-name ending (not all 60,000): their headers give the format, and a JPEG's luminance
quantisation table gives the quality it was saved at under the IJG (libjpeg) scaling every common encoder uses.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.datasets.trees import suffix

# Files read per file-name ending, spread evenly over the sorted names (so over classes and train/test).
SAMPLE_PER_KIND = 5
# The IJG standard luminance quantisation table (ITU T.81 Annex K), natural (row-major) order.
IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
])
# Formats whose files may hold lossy pixels; everything else PIL reads here (PNG, BMP, TIFF, GIF, PPM) is lossless.
_JPEG_FORMATS = {"JPEG", "MPO"}


def ijg_table(quality: int) -> np.ndarray:
    """The luminance table libjpeg writes for `quality` (1..100), baseline-clamped to 1..255."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((IJG_LUMINANCE * scale + 50) // 100, 1, 255)


_TABLES = {q: ijg_table(q) for q in range(1, 101)}


def jpeg_quality(table: Sequence[int]) -> tuple[int, bool]:
    """The IJG quality whose luminance table is closest to `table` (natural order), and whether it is exact."""
    t = np.asarray(table, dtype=np.int64)
    errors = {q: int(np.abs(ref - t).sum()) for q, ref in _TABLES.items()}
    best = min(errors, key=lambda q: (errors[q], -q))
    return best, errors[best] == 0


@dataclass(frozen=True)
class Encoding:
    """What a sample of image files was stored as."""

    formats: tuple[str, ...]  # PIL format names seen, sorted (e.g. ('JPEG',), ('JPEG', 'PNG'))
    lossy: str = ""  # '' when every sampled file is lossless, else e.g. 'JPEG quality 75'

    def describe_format(self, container: str) -> str:
        """The 'format' info entry, e.g. 'JPEG image zip', 'PNG image folder'."""
        return f"{'+'.join(self.formats) or 'unknown'} image {container}"

    def pixels(self, canonical: Iterable[str] = (), converted: Mapping[str, int] | None = None) -> str:
        """'lossy: ...' for a lossy encoding; 'canonical' when every format is one the data set's originals
        come in (its lossless originals); else 'lossless: PNG' and the like.

        converted: how many images each conversion was applied to ('16-bit to 8-bit': 12); pixels converted
        on decoding are neither the originals nor a lossless copy, so they are reported first, e.g.
        'converted: 16-bit to 8-bit (12 images); PNG'."""
        if converted:
            done = "; ".join(f"{what} ({n} image{'' if n == 1 else 's'})" for what, n in sorted(converted.items()))
            stored = f"lossy: {self.lossy}" if self.lossy else "+".join(self.formats) or "unknown"
            return f"converted: {done}; {stored}"
        if self.lossy:
            return f"lossy: {self.lossy}"
        if self.formats and set(self.formats) <= set(canonical):
            return "canonical"
        return f"lossless: {'+'.join(self.formats) or 'unknown'}"

    def to_meta(self) -> dict[str, object]:
        """For the cache metadata (JSON)."""
        return {"formats": list(self.formats), "lossy": self.lossy}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Encoding:
        """Inverse of to_meta."""
        return cls(tuple(str(f) for f in meta.get("formats", [])), str(meta.get("lossy", "")))


def sample(names: Sequence[str], per_kind: int = SAMPLE_PER_KIND) -> list[str]:
    """Up to per_kind names for each file-name ending, spread evenly over the names."""
    by_kind: dict[str, list[str]] = {}
    for n in names:
        by_kind.setdefault(suffix(n).lower(), []).append(n)
    picked: list[str] = []
    for group in by_kind.values():
        idx = np.unique(np.linspace(0, len(group) - 1, min(per_kind, len(group))).round().astype(int))
        picked.extend(group[i] for i in idx)
    return picked


def _webp_is_lossy(data: bytes) -> bool:
    # A simple lossless WebP holds a 'VP8L' chunk, a lossy one 'VP8 '; extended files ('VP8X') are taken as lossy
    # unless a VP8L chunk appears among their first bytes.
    return b"VP8L" not in data[12:4096]


def detect(names: Sequence[str], read: Callable[[str], bytes]) -> Encoding:
    """The formats of a sample of the named files and, for JPEGs, the quality read from their tables.

    Unreadable samples are passed over (the decoder counts and reports bad files).
    """
    formats: set[str] = set()
    qualities: set[int] = set()
    inexact = False
    lossy_other: set[str] = set()
    for name in sample(names):
        try:
            data = read(name)
            with Image.open(io.BytesIO(data)) as img:
                fmt = str(img.format)
                tables = getattr(img, "quantization", None) if fmt in _JPEG_FORMATS else None
        except (OSError, ValueError, EOFError, UnidentifiedImageError, Image.DecompressionBombError):
            continue
        formats.add("JPEG" if fmt in _JPEG_FORMATS else fmt)
        if fmt in _JPEG_FORMATS:
            if tables and 0 in tables:
                q, exact = jpeg_quality(list(tables[0]))
                qualities.add(q)
                inexact |= not exact
            else:
                inexact = True
        elif fmt == "WEBP" and _webp_is_lossy(data):
            lossy_other.add("WebP (lossy)")
    parts = []
    if "JPEG" in formats:
        if qualities:
            lo, hi = min(qualities), max(qualities)
            q_text = str(lo) if lo == hi else f"{lo}-{hi}"
            parts.append(f"JPEG quality {'~' + q_text + ' (non-IJG tables)' if inexact else q_text}")
        else:
            parts.append("JPEG quality unknown")
    parts.extend(sorted(lossy_other))
    return Encoding(tuple(sorted(formats)), "; ".join(parts))
