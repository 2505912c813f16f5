"""A gzip file read as a stream whose bytes a helper thread inflates ahead of the reader.

A .tar.gz is one compressed stream, so its members cannot be decoded in parallel; but the inflater releases the
GIL, so inflating the next megabytes on one core while the reader unpickles the last ones on the other overlaps
the two halves of the work. The inflater is ISA-L's (python-isal's isal_zlib, a drop-in for zlib with the same
output), faster than zlib (results/README.md#data-loading has the measurement and its command).
"""

from __future__ import annotations

import gzip
import io
import queue
import threading
import zlib
from pathlib import Path

from isal import isal_zlib

GZIP_MAGIC = b"\x1f\x8b"
# Compressed bytes read at a time, and the most inflated bytes handed over in one piece.
CHUNK = 1 << 22
# Inflated pieces waiting for the reader at most: bounds the memory the helper may run ahead by (16 MiB).
DEPTH = 4
# A reader that stops early (an error, or it found what it wanted) leaves the helper waiting on a full queue;
# it checks this often whether the reader has closed the stream.
CLOSED_POLL_S = 0.1


def is_gzip(path: Path) -> bool:
    """True when the file starts with gzip's magic number."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


class GzipAhead(io.RawIOBase):
    """The inflated bytes of a gzip file (all its members, as gzip -d gives them), inflated by a helper thread
    ahead of the reader. A damaged file raises gzip.BadGzipFile (an OSError) and a truncated one EOFError, on the
    read that reaches the fault.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._pieces: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=DEPTH)
        self._piece = memoryview(b"")
        self._ended = False
        self._position = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._inflate, args=(path,), name="gzip-ahead", daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # forward only: what tarfile needs to read its members in order

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._position + offset}.get(whence)
        if target is None or target < self._position:
            raise io.UnsupportedOperation("a gzip stream inflated ahead can only be read forward")
        skip = bytearray(min(target - self._position, CHUNK))
        while self._position < target and self.readinto(memoryview(skip)[:target - self._position]):
            pass
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._piece and not self._ended:
            piece = self._pieces.get()
            if piece is None:
                self._ended = True
            elif isinstance(piece, BaseException):
                self._ended = True
                raise piece
            else:
                self._piece = memoryview(piece)
        n = min(len(buffer), len(self._piece))
        memoryview(buffer).cast("B")[:n] = self._piece[:n]
        self._piece = self._piece[n:]
        self._position += n
        return n

    def close(self) -> None:
        self._stop.set()
        super().close()

    def _put(self, item: bytes | BaseException | None) -> bool:
        """Hands item to the reader; False when the reader has closed the stream."""
        while not self._stop.is_set():
            try:
                self._pieces.put(item, timeout=CLOSED_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _inflate(self, path: Path) -> None:
        try:
            with open(path, "rb") as fh:
                inflater = isal_zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer
                started = False  # the current member has begun
                while data := fh.read(CHUNK):
                    while data:
                        if not started:
                            data = data.lstrip(b"\0")  # gzip allows zero padding after the last member
                            if not data:
                                break
                        started = True
                        # At most CHUNK out per call: a small input may inflate a thousandfold.
                        piece = inflater.decompress(data, CHUNK)
                        if piece and not self._put(piece):
                            return
                        if inflater.eof:  # what follows is the next member, if any
                            data = inflater.unused_data
                            inflater, started = isal_zlib.decompressobj(wbits=31), False
                        else:
                            data = inflater.unconsumed_tail
                if started:
                    piece = inflater.flush()  # output zlib still held back for want of room
                    if piece and not self._put(piece):
                        return
                    if not inflater.eof:
                        raise EOFError("the gzip stream ends before its end-of-stream marker: the file is "
                                       "truncated")
            self._put(None)
        except (isal_zlib.error, zlib.error) as exc:  # as gzip.GzipFile reports a damaged file: an OSError
            self._put(gzip.BadGzipFile(f"the compressed data are damaged ({exc})"))
        except Exception as exc:  # noqa: BLE001 - whatever it is, the reader must get it, not wait forever
            self._put(exc)
