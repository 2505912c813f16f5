"""Fetchable: on disk, else fetched from its source when allowed and the source answers, else one message naming
every place looked in and every fix. The source is a file the tests write (a file: address): nothing leaves the
machine."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from bench.datasets import sources
from bench.datasets.base import DatasetUnavailable, ImageData
from bench.datasets.fetchable import Fetchable


@dataclass(frozen=True)
class _Files(Fetchable):
    """A data set that is one file, fetched by copying it from a source file the test wrote beside it."""

    name: ClassVar[str] = "files"
    description: ClassVar[str] = "one file"
    folder: Path = Path()
    path: str | None = None
    download: bool = True
    fetch_works: bool = True

    def _search(self) -> sources.Search:
        return sources.search(self.path, (), (self.folder / "data.bin",))

    def _source_url(self) -> str:
        return self._source().as_uri()

    def _source(self) -> Path:
        return self.folder / "source" / "data.bin"

    def _wanted(self) -> str:
        return "data.bin"

    def _fetch(self, where: sources.Search) -> None:
        if self.fetch_works:
            shutil.copyfile(self._source(), self.folder / "data.bin")

    def load(self) -> ImageData:
        raise NotImplementedError


def test_data_on_disk_is_available_and_located_without_the_network(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"x")
    assert _Files(folder=tmp_path).availability().ok
    assert _Files(folder=tmp_path).located() == tmp_path / "data.bin"


def _source(folder: Path) -> str:
    """Writes the data set's source file; its address."""
    (folder / "source").mkdir()
    (folder / "source" / "data.bin").write_bytes(b"x")
    return (folder / "source" / "data.bin").as_uri()


def test_missing_data_is_fetched_only_when_allowed_and_the_source_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    address = _source(tmp_path)
    hosts: list[str] = []
    monkeypatch.setattr(sources, "is_online", lambda host, *a, **k: hosts.append(host) or True)
    status = _Files(folder=tmp_path).availability()
    assert status.ok and status.reason == f"not on disk; will download {address}"
    assert _Files(folder=tmp_path).located() == tmp_path / "data.bin" and set(hosts) == {""}
    assert (tmp_path / "data.bin").read_bytes() == b"x"
    (tmp_path / "data.bin").unlink()
    off = _Files(folder=tmp_path, download=False)
    assert not off.availability().ok and "download=False" in off.availability().reason
    with pytest.raises(DatasetUnavailable, match="download=False"):
        off.located()


def test_a_fetch_that_leaves_nothing_is_unavailable_with_every_place_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "is_online", lambda *a, **k: True)
    with pytest.raises(DatasetUnavailable, match=f"looked in {tmp_path / 'data.bin'}"):
        _Files(folder=tmp_path, fetch_works=False).located()
