"""A folder or a zip seen the same way: relative file paths, their bytes, and a fingerprint of the whole."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
import threading
import zipfile
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path

from bench.datasets.base import DatasetError

# Entries no image set means to hold: macOS resource forks and hidden files (.DS_Store, ._x.png).
_IGNORED_DIRS = {"__MACOSX"}
# Why an entry of a folder is left out of its data set, as the data's metadata and the run's log say. The
# policy: hidden entries are skipped; symlinks are followed while they lead inside the data folder, and skipped
# when they lead outside it (a data set is what its folder holds, not what it points at: /dev/zero, a home
# folder) or to anything but a regular file or folder (FIFOs, sockets and devices would block or never end).
HIDDEN = "hidden"
OUTSIDE = "symlink leading outside the data folder"
NOT_REGULAR = "not a regular file or folder"
BROKEN_LINK = "broken symlink"
LOOP = "symlink to a folder it is in"
UNREADABLE = "cannot be read"
NAME_CLASH = "name not UTF-8, the same as another once escaped"
# The largest file read as an image: a 50-megapixel (images.MAX_PIXELS) uncompressed 16-bit RGBA image is
# 400 MB; anything larger is no image this harness decodes, and is refused unread (a sparse file can claim
# terabytes).
MAX_FILE_BYTES = 512 * 2**20
# Read size when hashing a whole file.
_HASH_CHUNK = 1 << 20


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
        """A digest of the files' names and bytes: it changes when any file is added, removed or rewritten,
        whatever its size and modification time say."""

    def left_out(self) -> list[tuple[str, str]]:
        """(entry, why) for each entry left out of the data set (hidden ones and, in a folder, the links and
        special files its policy skips)."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, most trees hold nothing open
        """Releases open handles."""

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DirTree(FileTree):
    """A folder on disk, walked as the policy above says: hidden entries, symlinks leading outside the folder
    and entries that are not regular files or folders are left out, and each is listed with its reason."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._files: list[tuple[str, int]] | None = None
        self._left_out: list[tuple[str, str]] = []
        self._real: dict[str, str] = {}  # shown name -> the name on disk, where they differ (not UTF-8)

    def _scan(self) -> list[tuple[str, int]]:
        if self._files is None:
            found: list[tuple[str, int]] = []
            root = os.path.realpath(self.path)
            top = os.stat(self.path)
            # Folders still to walk, as (path, shown prefix, prefix on disk, the folders it is in by device and
            # inode): a stack, not recursion, so no depth of nesting exhausts Python's.
            pending: list[tuple[str, str, str, frozenset[tuple[int, int]]]] = [
                (str(self.path), "", "", frozenset({(top.st_dev, top.st_ino)}))]
            while pending:
                pending.extend(reversed(self._walk(*pending.pop(), root, found)))
            self._files = sorted(found)
        return self._files

    def _walk(self, folder: str, prefix: str, disk: str, above: frozenset[tuple[int, int]], root: str,
              found: list[tuple[str, int]]) -> list[tuple[str, str, str, frozenset[tuple[int, int]]]]:
        """Adds the regular files of folder (shown as prefix..., named disk... on disk) to found, and returns its
        sub-folders to walk; `above`: the folders it is in (device, inode), so a link back to one of them is not
        walked again."""
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            self._left_out.append((prefix.rstrip("/") or ".", f"{UNREADABLE} ({exc.strerror})"))
            return []
        shown = {e.name: shown_name(e.name) for e in entries}
        clashes = Counter(shown.values())
        inside: list[tuple[str, str, str, frozenset[tuple[int, int]]]] = []
        for entry in entries:
            name = shown[entry.name]
            rel = prefix + name
            if name != entry.name and clashes[name] > 1:
                self._left_out.append((rel, NAME_CLASH))
                continue
            if entry.name.startswith(".") or entry.name in _IGNORED_DIRS:
                self._left_out.append((rel, HIDDEN))
                continue
            link = entry.is_symlink()
            if link and not _inside(os.path.realpath(entry.path), root):
                self._left_out.append((rel, OUTSIDE))
                continue
            try:
                st = os.stat(entry.path)
            except OSError:
                self._left_out.append((rel, BROKEN_LINK if link else UNREADABLE))
                continue
            if stat.S_ISDIR(st.st_mode):
                here = (st.st_dev, st.st_ino)
                if here in above:
                    self._left_out.append((rel, LOOP))
                    continue
                inside.append((entry.path, rel + "/", disk + entry.name + "/", above | {here}))
            elif stat.S_ISREG(st.st_mode):
                found.append((rel, st.st_size))
                if rel != disk + entry.name:
                    self._real[rel] = disk + entry.name
            else:
                self._left_out.append((rel, NOT_REGULAR))
        return inside

    def files(self) -> list[str]:
        """Relative paths of every regular file, sorted, names that are not UTF-8 shown escaped."""
        return [rel for rel, _ in self._scan()]

    def left_out(self) -> list[tuple[str, str]]:
        """(entry, why) for each entry of the folder left out of the data set."""
        self._scan()
        return list(self._left_out)

    def read(self, rel: str) -> bytes:
        """The file's bytes: a regular file of at most MAX_FILE_BYTES, else an OSError naming why not."""
        self._scan()
        return read_regular(self.path / self._real.get(rel, rel))

    def fingerprint(self) -> str:
        """Digest of every file's path and bytes (blake2b): any content change gives another, whatever the
        files' sizes and modification times say. A file that cannot be read counts by its error. (Threads gained
        nothing on a 2-core machine: image files are small and the GIL is taken for each.)"""
        h = hashlib.blake2b(digest_size=32)
        for rel, size in self._scan():
            h.update(f"{rel}\0{size}\0".encode())
            h.update(self._digest(rel))
        return h.hexdigest()

    def _digest(self, rel: str) -> bytes:
        """One file's digest, or its error's text."""
        try:
            return hashlib.blake2b(self.read(rel), digest_size=32).digest()
        except OSError as exc:
            return f"unreadable: {exc}".encode()


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

    def left_out(self) -> list[tuple[str, str]]:
        """(member, 'hidden') for each hidden member or macOS debris folder, a folder counted once."""
        tops = set()
        for info in self._handle().infolist():
            path_parts = parts(info.filename)
            first = next((k for k, p in enumerate(path_parts) if p.startswith(".") or p in _IGNORED_DIRS), None)
            if first is not None:
                tops.add("/".join(path_parts[:first + 1]))
        return [(t, HIDDEN) for t in sorted(tops)]

    def read(self, rel: str) -> bytes:
        """The member's bytes; a bad CRC or truncated member raises (and counts as a bad file upstream), as does
        one over MAX_FILE_BYTES (refused before it is inflated)."""
        handle = self._handle()
        size = handle.getinfo(rel).file_size
        if size > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, f"{size / 2**20:.0f} MB, over the {MAX_FILE_BYTES / 2**20:.0f} MB limit "
                                       "for one image file")
        return handle.read(rel)

    def fingerprint(self) -> str:
        """Digest of the archive's bytes."""
        return file_state(self.path)

    def close(self) -> None:
        """Closes the archive."""
        with self._lock:
            if self._zip is not None:
                self._zip.close()
                self._zip = None


def file_state(path: Path) -> str:
    """A digest of one file's bytes (blake2b): it changes with the contents, whatever the size and modification
    time say (cp -p, rsync -a and tar restore those)."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_regular(path: Path) -> bytes:
    """A regular file's bytes, refused (OSError) when it is anything else (a FIFO, a device: opened without
    blocking, never read) or larger than MAX_FILE_BYTES (never read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{NOT_REGULAR}: left out")
        if st.st_size > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, f"{st.st_size / 2**20:.0f} MB, over the {MAX_FILE_BYTES / 2**20:.0f} MB "
                                       "limit for one image file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            # The size the file has, and a byte more to see whether it grows while it is read (a read of the
            # cap itself would allocate the cap for every file).
            data = fh.read(st.st_size + 1)
            if len(data) > st.st_size:
                parts, total = [data], len(data)
                while total <= MAX_FILE_BYTES and (chunk := fh.read(_HASH_CHUNK)):
                    parts.append(chunk)
                    total += len(chunk)
                if total > MAX_FILE_BYTES:
                    raise OSError(errno.EFBIG, f"grew over the {MAX_FILE_BYTES / 2**20:.0f} MB limit while it was "
                                               "read")
                data = b"".join(parts)
        return data
    finally:
        os.close(fd)


def shown_name(name: str) -> str:
    """A file or folder name as text: bytes that are not UTF-8 (os.fsdecode's surrogates) shown escaped (\\xe9),
    so class names, logs and tables can hold it."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def open_tree(path: Path) -> FileTree:
    """A DirTree for a folder, a ZipTree for a .zip file; anything else an error saying what fits."""
    if path.is_dir():
        return DirTree(path)
    if path.is_file():
        if zipfile.is_zipfile(path):
            return ZipTree(path)
        raise DatasetError(not_a_tree(path))
    if not path.exists():
        raise DatasetError(f"{path} does not exist; give an existing folder or .zip file")
    # Never opened: a FIFO would block the read, a device never end it.
    raise DatasetError(f"{path} is neither a folder nor a regular file (a FIFO, socket or device); give a folder "
                       "of class sub-folders or a zip of one")


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
