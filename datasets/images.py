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
from PIL import Image
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


def is_image_name(rel: str) -> bool:
    """True when the file name ends like an image file."""
    return suffix(rel).lower() in IMAGE_EXTENSIONS


def decode(data: bytes, size: int | None) -> tuple[np.ndarray, bool]:
    """One image as uint8 (H, W, 3), resized to size x size if given, and whether it was grey."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        grey = img.mode in _GREY_MODES
        target = "L" if grey else "RGB"
        if img.mode != target:  # convert() copies even when the mode already fits
            img = img.convert(target)
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), RESAMPLE)
        arr = np.asarray(img, dtype=np.uint8)
    return (np.repeat(arr[..., None], 3, axis=2), True) if grey else (arr, False)


@dataclass
class Decoded:
    """Images that decoded (in input order) with their positions, and the files that did not."""

    x: np.ndarray
    kept: np.ndarray  # indices into the input list of the images in x
    skipped: list[str] = field(default_factory=list)
    grey: bool = False  # every kept image was single-channel; x then has one channel

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


# What one image gives: its index, its pixels (None when it did not decode), whether it was grey, the error.
Result = tuple[int, np.ndarray | None, bool, str]


class Chunk(NamedTuple):
    """One task's images: stacked into one array when all decoded at one shape (one object to pass between
    processes and one copy into the output, not one per image), else one Result per file."""

    start: int  # index of the chunk's first file
    stacked: np.ndarray | None  # (k, H, W, C) when every file decoded at the same shape
    grey: bool  # every image in `stacked` was grey
    results: list[Result]  # one per file when not stacked, else empty


def _read(read: Callable[[str], bytes], name: str) -> bytes | str:
    """The file's bytes, or the error reading it gave (a damaged zip member counts as a bad file)."""
    try:
        return read(name)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        return f"{type(exc).__name__}: {exc}"


def _decode_files(files: Sequence[bytes | str], start: int, size: int | None) -> Chunk:
    """Decodes files already read (a str is the error reading one gave); runs in a pool worker or here."""
    out: list[Result] = []
    for k, data in enumerate(files):
        if isinstance(data, str):
            out.append((start + k, None, False, data))
            continue
        try:
            out.append((start + k, *decode(data, size), ""))
        except (OSError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            # OSError covers unidentified and truncated images.
            out.append((start + k, None, False, f"{type(exc).__name__}: {exc}"))
    images = [arr for _, arr, _, _ in out]
    first = images[0]
    if first is not None and all(a is not None and a.shape == first.shape for a in images):
        return Chunk(start, np.stack(images), all(grey for _, _, grey, _ in out), [])  # type: ignore[arg-type]
    return Chunk(start, None, False, out)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Hides the caller's __main__ while pool workers start. multiprocessing imports it again in every worker
    it starts (for the harness's `python -m bench.worker`: the harness and scikit-learn, over a second each),
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
            yield _decode_files([_read(read, n) for n in part], start, size)
        return
    pool = ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context(START_METHOD))

    def submit() -> Future[Chunk] | None:
        start_part = next(parts, None)
        if start_part is None:
            return None
        start, part = start_part
        return pool.submit(_decode_files, [_read(read, n) for n in part], start, size)

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
            for i, arr, grey, err in chunk.results:
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
    return Decoded(x=x, kept=kept, skipped=skipped, grey=grey_all)


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
