"""Where data sets are looked for (path option, BENCH_DATA_DIR, Keras cache), online probe, downloads."""

from __future__ import annotations

import http.client
import os
import socket
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.datasets.base import DatasetError
from bench.datasets.images import progress_bar

DATA_DIR_ENV = "BENCH_DATA_DIR"
# The connectivity probe: one TCP connect, bounded so availability() never hangs offline.
PROBE_TIMEOUT_S = 2.0
# Read size for downloads: large enough for throughput, small enough for a live progress bar.
DOWNLOAD_CHUNK = 1 << 20
# A stalled server fails the download instead of hanging it.
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Search:
    """The places looked in for one data set, in order, and the first that exists."""

    places: tuple[Path, ...]
    found: Path | None

    def describe(self) -> str:
        """The places as one line."""
        return ", ".join(str(p) for p in self.places) or "(nowhere)"


# Keras' home where KERAS_HOME names none.
DEFAULT_KERAS_HOME = Path("~/.keras")


def data_dir() -> Path | None:
    """The folder named by BENCH_DATA_DIR, if set."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def keras_home() -> Path:
    """Keras' cache root: $KERAS_HOME, else ~/.keras."""
    return Path(os.environ.get("KERAS_HOME") or DEFAULT_KERAS_HOME).expanduser()


def search(path: str | os.PathLike[str] | None, known_names: Sequence[str],
           fallbacks: Sequence[Path] = ()) -> Search:
    """Looks in the explicit path, then each known name inside BENCH_DATA_DIR, then the fallbacks.

    A relative explicit path is looked for from the working folder first, then inside BENCH_DATA_DIR, so a suite
    can name a file of the data folder (path = "cells.zip") wherever that folder is.
    """
    places: list[Path] = []
    root = data_dir()
    if path is not None:
        explicit = Path(path).expanduser()
        places.append(explicit)
        if root is not None and not explicit.is_absolute():
            places.append(root / explicit)
    else:
        if root is not None:
            places.extend(root / name for name in known_names)
        places.extend(fallbacks)
    found = next((p for p in places if p.exists()), None)
    return Search(tuple(places), found)


def is_online(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to host:port opens within timeout seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unavailable_message(dataset: str, where: Search, how: str, download: bool, url: str) -> str:
    """One message naming every place looked in and every way to provide the data."""
    why = ("downloading is off (download=False)" if not download
           else f"the download server ({url}) cannot be reached from here")
    return (f"{dataset}: no data found; looked in {where.describe()}; {why}. Provide it by one of: set "
            f"{DATA_DIR_ENV} (or --data-dir) to a folder holding {how}; pass the dataset option "
            f"path=FILE_OR_FOLDER; or fetch {url} by hand into that folder")


def download(url: str, dest: Path, verify: Callable[[Path], None],
             opener: Callable[..., Any] | None = None) -> Path:
    """Fetches url to dest through dest+'.part', checks the size and `verify`, and only then renames it.

    A download that is cut short or fails verification never takes dest's name, so it cannot be
    mistaken for a complete file later.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with (opener or urllib.request.urlopen)(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length else None
            got = 0
            with open(part, "wb") as out, progress_bar(f"downloading {dest.name}") as bar:
                task = bar.add_task(f"downloading {dest.name}", total=expected)
                while chunk := response.read(DOWNLOAD_CHUNK):
                    out.write(chunk)
                    got += len(chunk)
                    bar.advance(task, len(chunk))
        if expected is not None and got != expected:
            raise DatasetError(f"download of {url} stopped after {got} of {expected} bytes; run again to "
                               "retry")
        verify(part)
        os.replace(part, dest)
    except (OSError, http.client.HTTPException) as exc:  # HTTPException: e.g. IncompleteRead
        raise DatasetError(f"download of {url} failed ({exc}); run again, or fetch it by hand to {dest}") from exc
    finally:
        part.unlink(missing_ok=True)
    return dest


def verify_zip(path: Path) -> None:
    """Raises unless path is a complete zip whose members all pass their CRC check."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"the downloaded file is not a complete zip ({exc}); run again to retry") from exc
    if bad is not None:
        raise DatasetError(f"the downloaded zip is damaged (member {bad} fails its CRC check); run again to "
                           "retry")
