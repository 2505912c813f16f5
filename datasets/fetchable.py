"""A data set looked for on disk under its known names and downloaded when allowed and needed: the availability
check and the find-or-download start of load() that every such data set shares."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from bench.datasets import sources
from bench.datasets.base import Availability, Dataset, DatasetUnavailable


class Fetchable(Dataset):
    """A Dataset with `path` and `download` options whose data a subclass finds (_search), names (_wanted,
    _source_url) and fetches (_fetch, described by _fetched_by)."""

    path: str | None
    download: bool

    def _search(self) -> sources.Search:
        """The places looked in, in order, and the first that holds the data."""
        raise NotImplementedError

    def _source_url(self) -> str:
        """Where the data is published."""
        raise NotImplementedError

    def _wanted(self) -> str:
        """What a data folder should hold, as the unavailable message says it."""
        raise NotImplementedError

    def _fetched_by(self) -> str:
        """How a download fetches it, as availability's reason says it."""
        return self._source_url()

    def _fetch(self, where: sources.Search) -> None:
        """Downloads the data to a place _search looks in; DatasetUnavailable when that fails."""
        raise NotImplementedError

    def _message(self, where: sources.Search) -> str:
        return sources.unavailable_message(self.name, where, self._wanted(), self.download, self._source_url())

    def availability(self) -> Availability:
        """On disk, or downloadable right now (a quick connect to the server, never a download)."""
        where = self._search()
        if where.found is not None:
            return Availability(ok=True)
        host = urlsplit(self._source_url()).hostname or ""
        if self.path is None and self.download and sources.is_online(host):
            return Availability(ok=True, reason=f"not on disk; will download {self._fetched_by()}")
        return Availability(ok=False, reason=self._message(where))

    def located(self) -> Path:
        """The first source found, downloaded first when allowed and needed; DatasetUnavailable when none."""
        where = self._search()
        if where.found is None:
            if not self.availability().ok:
                raise DatasetUnavailable(self._message(where))
            self._fetch(where)
            where = self._search()
            if where.found is None:
                raise DatasetUnavailable(self._message(where))
        return where.found
