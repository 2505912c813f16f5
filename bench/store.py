"""The results table, results/runs.csv: one row per run, replaced atomically on every write."""

from __future__ import annotations

import csv
import fcntl
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.records import COLUMNS, RunRecord
from bench.rundir import RUNS_TABLE, write_atomic

LOCK = ".runs.lock"


class StoreError(Exception):
    """The results table cannot be read as a results table."""


class ResultsStore:
    """runs.csv in an output folder; killing a writer at any moment leaves the old or the new table."""

    def __init__(self, out_dir: Path | str) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / RUNS_TABLE

    def records(self) -> dict[str, RunRecord]:
        """All recorded runs by run_id ({} when there is no table yet)."""
        if not self.path.exists():
            return {}
        with open(self.path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"run_id", "status"} - set(reader.fieldnames or [])
            if missing:
                raise StoreError(f"{self.path} is not a bench results table (no {', '.join(sorted(missing))} "
                                 "column); move it away or choose another --out")
            try:
                rows = [RunRecord.from_row(row) for row in reader]
            except (ValueError, TypeError) as exc:
                raise StoreError(f"{self.path} has a malformed row ({exc}); fix or remove that row") from exc
        return {r.run_id: r for r in rows}

    def put(self, record: RunRecord) -> None:
        """Adds or replaces the record's row, keeping the others."""
        self.put_many([record])

    def put_many(self, records: list[RunRecord]) -> None:
        """Adds or replaces several rows in one atomic write."""
        with self._locked():
            table = self.records()
            for record in records:
                table[record.run_id] = record
            write_atomic(self.path, _to_csv(table.values()))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialises writers (two drivers on one folder) with an advisory lock."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _to_csv(records: object) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:  # type: ignore[attr-defined]
        writer.writerow(record.to_row())
    return buf.getvalue()
