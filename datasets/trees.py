"""A folder or a zip seen the same way: relative file paths, their bytes, and a fingerprint of the whole."""

from __future__ import annotations

import hashlib
import os
import tarfile
import threading
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path

from bench.datasets.base import DatasetError

# Entries no image set means to hold: macOS resource forks and hidden files (.DS_Store, ._x.png).
_IGNORED_DIRS = {"__MACOSX"}


def parts(rel: str) -> tuple[str, ...]:
    """The parts of a relative '/'-separated path, as PurePosixPath(rel).parts gives them (empty parts and '.'
    dropped), without pathlib's cost: it took over a second for CIFAR-10's 60,000 names."""
    return tuple(p for p in rel.split("/") if p and p != ".")


def suffix(rel: str) -> str:
    """The file name's ending from its last dot ('.png'), as PurePosixPath(rel).suffix gives it."""
    name = rel.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def is_hidden(rel: str) -> bool:
    """True for entries a user never meant as data: hidden files and macOS archive debris."""
    return any(p.startswith(".") or p in _IGNORED_DIRS for p in parts(rel))


class FileTree(ABC):
    """Files under one root, named by '/'-separated relative paths."""

    container: str = "folder"  # what the files sit in, for the data's 'format' entry: 'folder' or 'zip'

    def __init__(self, path: Path) -> None:
        self.path = path

    @abstractmethod
    def files(self) -> list[str]:
        """Relative paths of every regular file, sorted, hidden entries left out."""

    @abstractmethod
    def read(self, rel: str) -> bytes:
        """The bytes of one file (thread-safe)."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A cheap digest that changes when any file is added, removed or rewritten."""

    def close(self) -> None:  # noqa: B027 - optional hook, most trees hold nothing open
        """Releases open handles."""

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DirTree(FileTree):
    """A folder on disk."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._files: list[tuple[str, int, int]] | None = None

    def _scan(self) -> list[tuple[str, int, int]]:
        if self._files is None:
            found = []
            for dirpath, dirnames, filenames in os.walk(self.path):
                dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
                for name in filenames:
                    full = os.path.join(dirpath, name)
                    rel = Path(full).relative_to(self.path).as_posix()
                    if is_hidden(rel):
                        continue
                    st = os.stat(full)
                    found.append((rel, st.st_size, st.st_mtime_ns))
            self._files = sorted(found)
        return self._files

    def files(self) -> list[str]:
        """Relative paths of every regular file, sorted."""
        return [rel for rel, _, _ in self._scan()]

    def read(self, rel: str) -> bytes:
        """The file's bytes."""
        return (self.path / rel).read_bytes()

    def fingerprint(self) -> str:
        """Digest of every file's path, size and modification time (no contents read)."""
        h = hashlib.sha256()
        for rel, size, mtime in self._scan():
            h.update(f"{rel}\0{size}\0{mtime}\n".encode())
        return h.hexdigest()


class ZipTree(FileTree):
    """A zip archive, opened on first use: a large central directory takes seconds to read, and a cache hit
    needs only the fingerprint. Threads share the handle: zipfile locks each read, not the decompression."""

    container = "zip"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._zip: zipfile.ZipFile | None = None
        self._lock = threading.Lock()

    def _handle(self) -> zipfile.ZipFile:
        with self._lock:
            if self._zip is None:
                try:
                    self._zip = zipfile.ZipFile(self.path)
                except (zipfile.BadZipFile, OSError) as exc:
                    raise DatasetError(f"{self.path} is not a readable zip archive ({exc}); download it "
                                       "again, or extract it and pass the folder instead") from exc
            return self._zip

    def files(self) -> list[str]:
        """Member names of every file (directories left out), sorted."""
        infos = self._handle().infolist()
        return sorted(i.filename for i in infos if not i.is_dir() and not is_hidden(i.filename))

    def read(self, rel: str) -> bytes:
        """The member's bytes; a bad CRC or truncated member raises (and counts as a bad file upstream)."""
        return self._handle().read(rel)

    def fingerprint(self) -> str:
        """Digest of the archive's size and modification time."""
        return file_state(self.path)

    def close(self) -> None:
        """Closes the archive."""
        with self._lock:
            if self._zip is not None:
                self._zip.close()
                self._zip = None


def file_state(path: Path) -> str:
    """A cheap digest of one file's size and modification time (its contents are not read)."""
    st = path.stat()
    return hashlib.sha256(f"{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()


def open_tree(path: Path) -> FileTree:
    """A DirTree for a folder, a ZipTree for a .zip file; anything else an error saying what fits."""
    if path.is_dir():
        return DirTree(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return ZipTree(path)
    if not path.exists():
        raise DatasetError(f"{path} does not exist; give an existing folder or .zip file")
    raise DatasetError(not_a_tree(path))


# The first bytes of the archive kinds a data set is often handed over in.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_GZIP_MAGIC = b"\x1f\x8b"
# Endings of names that promise a gzipped or plain tar archive.
_TAR_ENDINGS = (".tar.gz", ".tgz", ".tar")


def not_a_tree(path: Path) -> str:
    """Why a file is neither a folder nor a readable zip: what it is, or why it could not be read, and the fix."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    name = path.name.lower()
    if head.startswith(_ZIP_MAGIC) or name.endswith(".zip"):
        try:
            zipfile.ZipFile(path).close()
            reason = "it opens, but its directory does not list it as a zip"  # unreachable past is_zipfile
        except (zipfile.BadZipFile, OSError) as exc:
            reason = str(exc)
        how = "truncated or damaged" if head.startswith(_ZIP_MAGIC) else "not a zip at all: it does not start " \
            "like one"
        return (f"{path} is not a readable zip archive ({how}: {reason}); re-download it, or extract it and give "
                "the folder")
    if name.endswith(_TAR_ENDINGS) or head.startswith(_GZIP_MAGIC):
        if head.startswith(_GZIP_MAGIC) or (not name.endswith((".gz", ".tgz")) and tarfile.is_tarfile(path)):
            return (f"{path} is a tar or gzip archive, which is read only as CIFAR-10's pickled batches; for "
                    "image folders extract it and give the folder, or give a zip")
        return (f"{path} is named like a tar archive but is not one (its first bytes are not a gzip or tar "
                "header: damaged, or not what its name says); re-download it")
    return (f"{path} is neither a folder nor a zip archive (its first bytes are not any archive's); give a folder "
            "of class sub-folders or a zip of one")
