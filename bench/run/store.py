"""The results table, results/runs.csv: one row per run, replaced atomically on every write."""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.core.rundir import RUNS_TABLE, write_atomic
from bench.run.records import COLUMNS, RunRecord

LOCK = ".runs.lock"
# Columns a row cannot do without (the record's fields with no default); the others may be missing, as in
# tables written before they existed.
REQUIRED = tuple(f.name for f in dataclasses.fields(RunRecord)
                 if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
# A damaged table is never rewritten (its rows would be lost): the user decides what becomes of it.
_ADVICE = "; move it away or choose another --out (the file is left as it is)"


class StoreError(Exception):
    """The results table cannot be read as a results table."""


class ResultsStore:
    """runs.csv in an output folder; killing a writer at any moment leaves the old or the new table."""

    def __init__(self, out_dir: Path | str) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / RUNS_TABLE

    def records(self) -> dict[str, RunRecord]:
        """All recorded runs by run_id ({} when there is no table yet); StoreError names the first bad line."""
        if not self.path.exists():
            return {}
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise StoreError(f"{self.path} cannot be read ({exc.strerror}){_ADVICE}") from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise StoreError(f"{self.path}, line {line}: not UTF-8 text (a binary file?){_ADVICE}") from exc
        if "\0" in text:
            # csv reads NUL bytes as text; they only come from a damaged or foreign file.
            line = text.count("\n", 0, text.index("\0")) + 1
            raise StoreError(f"{self.path}, line {line}: contains NUL bytes (a damaged file?){_ADVICE}")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            header = reader.fieldnames or []
            missing = {"run_id", "status"} - set(header)
            if missing:
                raise StoreError(f"{self.path} is not a bench results table (no {', '.join(sorted(missing))} "
                                 f"column in line 1){_ADVICE}")
            if lacking := [c for c in REQUIRED if c not in header]:
                raise StoreError(f"{self.path}, line 1: the header has no {', '.join(lacking)} column, "
                                 f"which every run needs{_ADVICE}")
            rows: dict[str, RunRecord] = {}
            for row in reader:
                rows.update(self._record(row, reader.line_num, len(header)))
        except csv.Error as exc:
            # The underlying reader's count: DictReader's own is only updated after a row parses.
            raise StoreError(f"{self.path}, line {reader.reader.line_num}: not CSV ({_short(exc)}){_ADVICE}") from exc
        return rows

    def _record(self, row: dict[str | None, str | None], line: int, width: int) -> dict[str, RunRecord]:
        """One row as {run_id: record}; a row whose cells do not match the header is a damaged line."""
        # DictReader puts surplus cells under the key None and fills missing ones with None.
        cells = width + len(row.get(None) or []) - sum(1 for v in row.values() if v is None)
        if None in row or any(v is None for v in row.values()):
            raise StoreError(f"{self.path}, line {line}: {cells} cells where the header has {width} "
                             f"(a truncated or damaged line){_ADVICE}")
        try:
            record = RunRecord.from_row(row)  # type: ignore[arg-type]
        except (ValueError, TypeError, OverflowError) as exc:
            raise StoreError(f"{self.path}, line {line}: malformed row ({_short(exc)}){_ADVICE}") from exc
        if not record.run_id:
            raise StoreError(f"{self.path}, line {line}: no run_id{_ADVICE}")
        return {record.run_id: record}

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


def _short(exc: Exception, limit: int = 200) -> str:
    """An error's text on one line, cut short: a damaged cell can be megabytes."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _to_csv(records: object) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:  # type: ignore[attr-defined]
        writer.writerow(record.to_row())
    return buf.getvalue()
