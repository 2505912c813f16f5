"""The gzip stream inflated ahead by a helper thread: the bytes gzip gives, errors on damage, forward seeks."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from isal import isal_zlib

from bench.datasets import gzip_ahead
from bench.datasets.gzip_ahead import GzipAhead
from tests.datasets.builders import generated_tar


def payload(seed: int, size: int) -> bytes:
    """Bytes that compress partly (runs) and partly not (noise), so inflating crosses many pieces."""
    rng = np.random.default_rng(seed)
    runs = np.repeat(rng.integers(0, 256, size // 64, dtype=np.uint8), 32)
    return (runs.tobytes() + rng.integers(0, 256, size - len(runs), dtype=np.uint8).tobytes())[:size]


def test_reads_what_gzip_reads_across_members_and_padding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gzip_ahead, "CHUNK", 1 << 12)  # many pieces, members split across reads
    first, second = payload(0, 300_000), payload(1, 70_000)
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(first) + gzip.compress(second) + gzip.compress(b"") + b"\0" * 600)
    with io.BufferedReader(GzipAhead(path)) as stream:
        assert stream.read() == first + second == gzip.decompress(path.read_bytes())


def test_a_thousandfold_inflation_comes_in_bounded_pieces(tmp_path: Path) -> None:
    path = tmp_path / "zeros.gz"
    path.write_bytes(gzip.compress(bytes(40 * gzip_ahead.CHUNK)))
    stream, room = GzipAhead(path), bytearray(4 * gzip_ahead.CHUNK)
    sizes = []
    while n := stream.readinto(room):
        sizes.append(n)
    assert sum(sizes) == 40 * gzip_ahead.CHUNK and max(sizes) <= gzip_ahead.CHUNK


def test_a_truncated_file_is_an_error_not_a_short_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(payload(2, 200_000))[:-4_000])
    with pytest.raises(EOFError, match="truncated"):
        GzipAhead(path).read()


def test_damaged_bytes_are_an_error(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(payload(3, 200_000)))
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(gzip.BadGzipFile, match="damaged"):
        GzipAhead(path).read()


def test_seeks_forward_only(tmp_path: Path) -> None:
    data = payload(4, 100_000)
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(data))
    stream = GzipAhead(path)
    assert stream.seekable() and stream.read(10) == data[:10] and stream.tell() == 10
    assert stream.seek(5_000) == 5_000 and stream.read(3) == data[5_000:5_003]
    assert stream.seek(7, io.SEEK_CUR) == 5_010 and stream.read(2) == data[5_010:5_012]
    with pytest.raises(io.UnsupportedOperation, match="forward"):
        stream.seek(0)


def test_closing_early_ends_the_helper(tmp_path: Path) -> None:
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(bytes(64 * gzip_ahead.CHUNK)))  # far more than the queue holds
    stream = GzipAhead(path)
    stream.read(10)
    stream.close()
    stream._thread.join(timeout=10 * gzip_ahead.CLOSED_POLL_S + 5)
    assert not stream._thread.is_alive()


def test_is_gzip_by_magic_number(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(gzip.compress(b"x"))
    (tmp_path / "b").write_bytes(b"ustar")
    assert gzip_ahead.is_gzip(tmp_path / "a") and not gzip_ahead.is_gzip(tmp_path / "b")


# The inflaters compared on an archive of the real one's size and contents: zlib (the standard library's, what
# gzip and tarfile use) and ISA-L's (what GzipAhead uses).
INFLATERS = {"zlib": zlib, "isal_zlib": isal_zlib}


@pytest.fixture(scope="module")
def canonical_size_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a cifar-10-python.tar.gz made like the real one (50,000 + 10,000 images, 161 MB)."""
    return generated_tar(tmp_path_factory.mktemp("tar") / "cifar-10-python.tar.gz", 5000, 1000).read_bytes()


def inflate(module: Any, data: bytes) -> int:
    """Inflates the gzip stream as GzipAhead's helper does (4 MiB in at a time); returns the bytes out."""
    inflater, out = module.decompressobj(wbits=31), 0
    for at in range(0, len(data), gzip_ahead.CHUNK):
        out += len(inflater.decompress(data[at:at + gzip_ahead.CHUNK]))
    return out + len(inflater.flush())


@pytest.mark.slow
@pytest.mark.parametrize("name", INFLATERS)
def test_inflate_speed(benchmark, canonical_size_archive: bytes, name: str) -> None:
    # Run with: pytest tests/datasets/test_gzip_ahead.py --benchmark-only -m '' (the two rows side by side).
    out = benchmark.pedantic(inflate, args=(INFLATERS[name], canonical_size_archive), rounds=5, iterations=1)
    assert out == len(gzip.decompress(canonical_size_archive))
