"""Decoding image files to uint8 arrays: in parallel processes, with a progress bar, bad files skipped and counted."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import sys
import types
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bench.datasets.base import DatasetError
from bench.datasets.trees import suffix

# File name endings PIL decodes that image sets use; anything else (Thumbs.db, desc.txt) is not data.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                              ".pgm"})
# A load fails when more than this share of the image files cannot be decoded: a few bad files in a
# real collection are normal, many mean the wrong or a damaged source.
MAX_BAD_FRACTION = 0.01
# How many skipped file names the metadata keeps, so a broken set does not flood the run record.
MAX_SKIPPED_LISTED = 20
# Downscaling filter: PIL's bilinear widens its support when shrinking, so it antialiases (unlike nearest).
RESAMPLE = Image.Resampling.BILINEAR
# Images per task: enough to amortise a task's scheduling and pickling (a fraction of a millisecond), few enough
# that the files and images in flight stay a few MB even for large images (NIH's cells: ~40 KB a PNG).
CHUNK = 64
# Decoding processes, one per usable core. Processes, not threads: for small images (CIFAR-10's 32x32 JPEGs)
# PIL's header parsing and Python's per-image work hold the GIL, so threads gain little over one loop.
WORKERS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
# Below this many images one loop in this process is used: each worker's start (a fresh interpreter importing
# numpy and PIL) costs a few tenths of a second, which small sets do not repay.
MIN_POOL_IMAGES = 2000
# Chunks each worker may have decoded or queued before this process takes them: enough to keep it busy.
IN_FLIGHT_PER_WORKER = 4
# Workers are forked from multiprocessing's fork server (a clean process started for the purpose), never from
# this one, which may hold TensorFlow's threads. Platforms without it (Windows) spawn.
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
# Modes decoded as one grey channel; everything else (RGBA, P, CMYK, ...) becomes RGB.
_GREY_MODES = {"1", "L", "I", "I;16", "F", "LA"}
# The most pixels one image may have: its decode is refused above this, before any pixel is decoded. PIL itself
# only refuses past ~179 million (its decompression-bomb guard), and a small file can declare that many: a
# 420 KB PNG of 12,000 x 12,000 took a load past 1.5 GB. 50 million (e.g. 8,000 x 6,250) is above any photo
# an image classification set holds and keeps one decode under 200 MB (PIL holds colour at 4 bytes a pixel).
MAX_PIXELS = 50_000_000
# An image at least this many times the target size on both sides is first shrunk by a whole factor (a JPEG
# while it is decoded, through draft(); others by reduce()) to at most REDUCING_GAP times the target, so the
# mode conversion and the final resize never touch a full-size copy. Images below it (NIH's cells: at most ~6x
# the 64 px target) are resized as before, pixel for pixel.
REDUCE_FROM = 8
# How much larger than the target a pre-reduced image stays, so the final bilinear resize still antialiases
# (PIL's thumbnail() uses the same gap).
REDUCING_GAP = 2
# Pixels of one strip of rows converted and reduced at a time: a few MB, whatever the image's size.
REDUCE_STRIP_PIXELS = 1 << 20
# Modes reduce() accepts; others are converted to L or RGB before it.
_REDUCIBLE_MODES = {"L", "RGB", "RGBA"}
# Modes of integer grey images wider than 8 bits: PIL reads a 16-bit grey PNG or TIFF as I;16 (or I;16B),
# with every bit kept, and convert("L") clips it to 0..255 instead of scaling it.
_WIDE_GREY_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
# What the info says of images scaled from 16 bits (or 32-bit float) to 8.
CONVERTED_16_BIT = "16-bit to 8-bit"
CONVERTED_FLOAT = "32-bit float to 8-bit"


class DecodedImage(NamedTuple):
    """One decoded image: uint8 (H, W, 3), whether it was grey, and how its pixels were converted ('' when
    they were read as stored)."""

    pixels: np.ndarray
    grey: bool
    converted: str = ""


def is_image_name(rel: str) -> bool:
    """True when the file name ends like an image file."""
    return suffix(rel).lower() in IMAGE_EXTENSIONS


def _too_large(name: str, width: int, height: int) -> DatasetError:
    return DatasetError(f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), over the "
                        f"{MAX_PIXELS / 1e6:.0f}-megapixel limit for one image (a small file can declare that "
                        "many pixels and take gigabytes to decode); shrink it or remove it from the data set")


def _open(data: bytes, name: str) -> Image.Image:
    """The image, opened (header only), its declared size checked against MAX_PIXELS."""
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:  # PIL names the in-memory buffer, not the file
        raise UnidentifiedImageError(f"{name} is not an image file PIL can read (damaged, or not what its "
                                     "name says)") from exc
    except Image.DecompressionBombError as exc:
        raise DatasetError(f"{name}: {exc}; shrink it or remove it from the data set") from exc
    if img.width * img.height > MAX_PIXELS:
        img.close()
        raise _too_large(name, img.width, img.height)
    return img


def _png_rawmode(img: Image.Image) -> str:
    """The raw mode a PNG's pixel data is read with ('RGB;16B' for 16-bit colour), '' for other formats."""
    if img.format != "PNG" or not img.tile:
        return ""
    args = img.tile[0].args
    return str(args[0] if isinstance(args, tuple) else args)


def _png_with_rawmode(data: bytes, rawmode: str) -> np.ndarray:
    """A PNG's pixels read by PIL's own decoder with another raw mode of the same width in bits."""
    with Image.open(io.BytesIO(data)) as img:
        img.tile = [img.tile[0]._replace(args=rawmode)]
        img.load()
        return np.asarray(img)


def _png16_colour(data: bytes, rawmode: str) -> np.ndarray:
    """A 16-bit colour or grey-with-alpha PNG as uint16 (H, W, C), every bit kept.

    PIL reads these as 8-bit RGB(A), keeping each sample's high byte (a truncation, not a rounding). Its decoder
    does the PNG work (inflating, unfiltering, interlacing); only the unpacking is chosen here: the same bits
    read as little-endian give the low bytes, and a 16-bit grey+alpha pixel read as 8-bit RGBA gives grey's
    high and low bytes, then alpha's.
    """
    if rawmode == "LA;16B":
        both = _png_with_rawmode(data, "RGBA").astype(np.uint16)
        return (both[..., 0] << 8 | both[..., 1])[..., None]
    high = _png_with_rawmode(data, rawmode).astype(np.uint16)
    low = _png_with_rawmode(data, rawmode.replace(";16B", ";16L"))
    return high << 8 | low


def _to_8_bits(values: np.ndarray, top: int) -> np.ndarray:
    """Integer samples 0..top as uint8, round(v * 255 / top): for 16 bits, v / 257 rounded (65535 -> 255).

    In integers: floor((2 * v * 255 + top) / (2 * top)) is v * 255 / top rounded half up, and for 16 bits no
    value lies halfway (257 is odd). Row by row, so the wide temporaries stay a row's size."""
    wide = np.uint32 if 2 * 255 * top + top < 2**32 else np.int64
    out = np.empty(values.shape, dtype=np.uint8)
    for r in range(len(values)):
        v = values[r].astype(wide)
        out[r] = (2 * 255 * v + top) // (2 * top)
    return out


def _declared_bits(img: Image.Image) -> int | None:
    """The bits per sample the file declares, where PIL exposes it (a PNG's raw mode, a TIFF's tag)."""
    rawmode = _png_rawmode(img)
    if rawmode:
        return 16 if ";16" in rawmode else 8
    tags = getattr(img, "tag_v2", None)
    bits = tags.get(258) if tags is not None else None  # TIFF BitsPerSample
    if isinstance(bits, tuple):
        bits = bits[0] if bits else None
    return int(bits) if isinstance(bits, int) else None


def _wide_to_8_bits(img: Image.Image, data: bytes, name: str) -> tuple[Image.Image, str] | None:
    """The image as 8-bit L or RGB when it holds more than 8 bits a sample (16-bit grey or colour, 32-bit
    integer, float), with what was converted; None for an 8-bit image. Loads the image."""
    rawmode = _png_rawmode(img)
    if rawmode in ("RGB;16B", "RGBA;16B", "LA;16B"):
        wide = _png16_colour(data, rawmode)
        eight = _to_8_bits(wide[..., :3], 65535)  # alpha dropped, as convert("RGB") drops it
        if eight.shape[-1] == 1:
            return Image.fromarray(eight[..., 0], "L"), CONVERTED_16_BIT
        return Image.fromarray(eight, "RGB"), CONVERTED_16_BIT
    if img.mode in ("RGB", "RGBA") and any(";16" in str(t.args) for t in img.tile):
        raise ValueError(f"{name} is a 16-bit colour {img.format} image, which PIL reads cut to its high bytes; "
                         "convert it to 8-bit or to a 16-bit PNG")
    if img.mode in _WIDE_GREY_MODES:
        bits = 16 if img.mode.startswith("I;16") else _declared_bits(img)
        img.load()
        values = np.asarray(img)
        if values.size and values.min() < 0:
            raise ValueError(f"{name} holds negative grey values (mode {img.mode}); image sets hold 0 and up")
        if bits is not None and bits <= 8:
            top, what = 255, ""  # 8-bit samples that PIL widened: nothing to scale
        elif bits is not None and bits <= 16:
            top, what = 2**bits - 1, CONVERTED_16_BIT if bits == 16 else f"{bits}-bit to 8-bit"
        else:
            # No declared depth, or 32 bits: the range of PIL's mode I, a signed 32-bit integer.
            top, what = 2**31 - 1, "32-bit integer to 8-bit"
        if values.size and values.max() > top:
            raise ValueError(f"{name} holds grey values up to {values.max()}, beyond the {top} its depth allows")
        return Image.fromarray(_to_8_bits(values, top), "L"), what
    if img.mode == "F":
        img.load()
        values = np.asarray(img, dtype=np.float64)
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        # Float images carry no scale of their own: values within 0..1 are read as fractions of full white,
        # else within 0..255 as 8-bit levels; anything else (negative, larger, NaN) has no faithful 8-bit form.
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 255:
            raise ValueError(f"{name} is a 32-bit float image with values {lo:g}..{hi:g}; only values within "
                             "0..1 (fractions of white) or 0..255 (8-bit levels) can be scaled to 8 bits: "
                             "save it as an 8-bit or 16-bit image")
        scale = 255.0 if hi <= 1 else 1.0
        return Image.fromarray(np.rint(values * scale).astype(np.uint8), "L"), CONVERTED_FLOAT
    return None


def _reduce(img: Image.Image, target: str, factor: int) -> Image.Image:
    """The loaded image shrunk by a whole factor (each pixel the mean of a factor x factor box), in strips of
    rows: a mode reduce() does not take (P, 1, CMYK, ...) is converted one strip at a time, so no full-size
    converted copy is made (a palette image would take 4 bytes a pixel as RGB, 1 as decoded)."""
    if factor < 2:
        return img
    width, height = img.size
    out_mode = img.mode if img.mode in _REDUCIBLE_MODES else target
    out = Image.new(out_mode, (-(-width // factor), -(-height // factor)))
    step = factor * max(1, REDUCE_STRIP_PIXELS // (width * factor))  # whole boxes per strip
    for top in range(0, height, step):
        strip = img.crop((0, top, width, min(height, top + step)))
        if strip.mode != out_mode:
            strip = strip.convert(out_mode)
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


def decode(data: bytes, size: int | None, name: str = "image") -> DecodedImage:
    """One image as uint8 (H, W, 3), resized to size x size if given, and whether it was grey.

    Images of more than 8 bits a sample are scaled to 8 (16 bits: v / 257 rounded) and say so in `converted`;
    one of more than MAX_PIXELS pixels is refused before it is decoded (a DatasetError naming the file).
    """
    with _open(data, name) as opened:
        img: Image.Image = opened
        huge = size is not None and min(img.size) >= REDUCE_FROM * size
        if huge and img.format == "JPEG":
            # Decoded at 1/2, 1/4 or 1/8 scale by the JPEG decoder itself: the full-size image never exists.
            img.draft(img.mode, (REDUCING_GAP * size, REDUCING_GAP * size))  # type: ignore[operator]
        converted = ""
        wide = _wide_to_8_bits(img, data, name)
        if wide is not None:
            img, converted = wide
        img.load()
        grey = img.mode in _GREY_MODES
        target = "L" if grey else "RGB"
        if huge and size is not None:
            img = _reduce(img, target, min(img.size) // (REDUCING_GAP * size))
        if img.mode != target:  # convert() copies even when the mode already fits
            img = img.convert(target)
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), RESAMPLE)
        arr = np.asarray(img, dtype=np.uint8)
    pixels = np.repeat(arr[..., None], 3, axis=2) if grey else arr
    return DecodedImage(pixels, grey, converted)


@dataclass
class Decoded:
    """Images that decoded (in input order) with their positions, and the files that did not."""

    x: np.ndarray
    kept: np.ndarray  # indices into the input list of the images in x
    skipped: list[str] = field(default_factory=list)
    grey: bool = False  # every kept image was single-channel; x then has one channel
    converted: dict[str, int] = field(default_factory=dict)  # conversion ('16-bit to 8-bit') -> images

    @property
    def n_skipped(self) -> int:
        """How many image files could not be decoded."""
        return len(self.skipped)


def progress_bar(description: str) -> Progress:
    """A rich progress bar on stderr that stays silent when stderr is not a terminal (logs, CI, tests)."""
    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=True,
                    disable=not sys.stderr.isatty())


# What one image gives: its index, its pixels (None when it did not decode), whether it was grey, the error, and
# how its pixels were converted ('' for none).
Result = tuple[int, np.ndarray | None, bool, str, str]


class Chunk(NamedTuple):
    """One task's images: stacked into one array when all decoded at one shape (one object to pass between
    processes and one copy into the output, not one per image), else one Result per file."""

    start: int  # index of the chunk's first file
    stacked: np.ndarray | None  # (k, H, W, C) when every file decoded at the same shape
    grey: bool  # every image in `stacked` was grey
    results: list[Result]  # one per file when not stacked, else empty
    converted: dict[str, int]  # how many of the chunk's images each conversion was applied to


def _read(read: Callable[[str], bytes], name: str) -> bytes | str:
    """The file's bytes, or the error reading it gave (a damaged zip member counts as a bad file)."""
    try:
        return read(name)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        return f"{type(exc).__name__}: {exc}"


def _decode_files(files: Sequence[bytes | str], start: int, size: int | None, names: Sequence[str]) -> Chunk:
    """Decodes files already read (a str is the error reading one gave); runs in a pool worker or here.

    names: the files' names, for the errors. An image over MAX_PIXELS raises (DatasetError): it is refused,
    not counted as a damaged file."""
    out: list[Result] = []
    converted: dict[str, int] = {}
    for k, data in enumerate(files):
        if isinstance(data, str):
            out.append((start + k, None, False, data, ""))
            continue
        try:
            image = decode(data, size, names[k])
        except (OSError, ValueError, EOFError) as exc:
            # OSError covers unidentified and truncated images.
            out.append((start + k, None, False, f"{type(exc).__name__}: {exc}", ""))
            continue
        out.append((start + k, image.pixels, image.grey, "", image.converted))
        if image.converted:
            converted[image.converted] = converted.get(image.converted, 0) + 1
    images = [arr for _, arr, _, _, _ in out]
    first = images[0]
    if first is not None and all(a is not None and a.shape == first.shape for a in images):
        return Chunk(start, np.stack(images), all(grey for _, _, grey, _, _ in out), [],  # type: ignore[arg-type]
                     converted)
    return Chunk(start, None, False, out, converted)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Hides the caller's __main__ while pool workers start. multiprocessing imports it again in every worker
    it starts (for the harness's `python -m bench.run.worker`: the harness and scikit-learn, over a second each),
    though the workers only run functions of this module."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _chunks(names: Sequence[str], read: Callable[[str], bytes], size: int | None) -> Iterator[Chunk]:
    """Decoded chunks in input order: from a process pool for a large set, else from one loop here.

    This process reads the files (for a zip, copies of its members: a small share of the work) and the
    workers decode them, so workers need not open the source (a zip's directory costs each one a third of a
    second and tens of MB for CIFAR-10's 60,000 members) and any `read` works.
    """
    starts = range(0, len(names), CHUNK)
    parts = iter(zip(starts, (names[s:s + CHUNK] for s in starts), strict=True))
    if WORKERS < 2 or len(names) < MIN_POOL_IMAGES:
        for start, part in parts:
            yield _decode_files([_read(read, n) for n in part], start, size, part)
        return
    pool = ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context(START_METHOD))

    def submit() -> Future[Chunk] | None:
        start_part = next(parts, None)
        if start_part is None:
            return None
        start, part = start_part
        return pool.submit(_decode_files, [_read(read, n) for n in part], start, size, part)

    try:
        # A few chunks per worker in flight, not all: read files and decoded chunks waiting for this process
        # would otherwise pile up (up to a second copy of the data set when this process gets less CPU).
        with _main_module_hidden():  # the workers start on these first submits
            pending = deque(f for f in (submit() for _ in range(WORKERS * IN_FLIGHT_PER_WORKER)) if f is not None)
        while pending:
            chunk = pending.popleft().result()
            more = submit()
            if more is not None:
                pending.append(more)
            yield chunk
    finally:
        # On an error (or Ctrl-C) the chunks not yet started are dropped instead of decoded for nothing.
        pool.shutdown(wait=True, cancel_futures=True)


def _size_error(name: str, shape: tuple[int, ...], expected: tuple[int, ...]) -> DatasetError:
    return DatasetError(f"images differ in size: {name} is {shape[1]}x{shape[0]} but earlier ones are "
                        f"{expected[1]}x{expected[0]}; set the dataset option size=N to resize all to N x N")


def decode_all(names: Sequence[str], read: Callable[[str], bytes], size: int | None,
               description: str = "decoding") -> Decoded:
    """Decodes every named file into one preallocated uint8 array; bad files are skipped and listed.

    read gives a file's bytes (called in this process; large sets are decoded by a pool of processes). With
    size None every image must have the same native size, else the error asks for a size.
    """
    n = len(names)
    if n == 0:
        raise DatasetError("no image files to decode")
    x: np.ndarray | None = None
    ok = np.zeros(n, dtype=bool)
    grey_all = True
    skipped: list[str] = []
    errors: dict[str, str] = {}
    converted: dict[str, int] = {}

    with progress_bar(description) as bar:
        task = bar.add_task(description, total=n)
        for chunk in _chunks(names, read, size):
            if chunk.stacked is not None:
                k = len(chunk.stacked)
                if x is None:
                    x = np.empty((n, *chunk.stacked.shape[1:]), dtype=np.uint8)
                elif chunk.stacked.shape[1:] != x.shape[1:]:
                    raise _size_error(names[chunk.start], chunk.stacked.shape[1:], x.shape[1:])
                x[chunk.start:chunk.start + k] = chunk.stacked
                ok[chunk.start:chunk.start + k] = True
                grey_all &= chunk.grey
            for what, count in chunk.converted.items():
                converted[what] = converted.get(what, 0) + count
            for i, arr, grey, err, _ in chunk.results:
                if arr is None:
                    skipped.append(names[i])
                    errors[names[i]] = err
                    continue
                if x is None:
                    x = np.empty((n, *arr.shape), dtype=np.uint8)
                elif arr.shape != x.shape[1:]:
                    raise _size_error(names[i], arr.shape, x.shape[1:])
                x[i] = arr
                ok[i] = True
                grey_all &= grey
            bar.advance(task, len(chunk.results) or len(chunk.stacked))  # type: ignore[arg-type]

    check_bad_fraction(len(skipped), n, skipped, errors)
    if x is None:  # unreachable past check_bad_fraction, kept for the type checker
        raise DatasetError("no image could be decoded")
    kept = np.flatnonzero(ok)
    if len(kept) < n:
        # Compacted in place (kept is increasing, so no row is overwritten before it is moved): a copy
        # would double the peak memory of a load for a few bad files.
        for j, i in enumerate(kept):
            if i != j:
                x[j] = x[i]
        x = x[:len(kept)]
    if grey_all:
        x = np.ascontiguousarray(x[..., :1])
    return Decoded(x=x, kept=kept, skipped=skipped, grey=grey_all, converted=converted)


def check_bad_fraction(n_bad: int, n_total: int, skipped: Sequence[str], errors: dict[str, str]) -> None:
    """Raises when more than MAX_BAD_FRACTION of the image files are unreadable, showing a few of them."""
    if n_bad and n_bad > MAX_BAD_FRACTION * n_total:
        examples = "; ".join(f"{s} ({errors.get(s, '?')})" for s in skipped[:3])
        raise DatasetError(
            f"{n_bad} of {n_total} image files could not be decoded (more than {MAX_BAD_FRACTION:.0%} "
            f"allowed), e.g. {examples}; the source looks damaged or is not what this dataset expects: "
            "download or extract it again")


def skipped_info(decoded: Decoded) -> dict[str, object]:
    """The metadata entries for skipped files: their count and the first few names."""
    return {"n_skipped": decoded.n_skipped, "skipped": list(decoded.skipped[:MAX_SKIPPED_LISTED])}
