"""The report written once from the hand-made results, shared by the tests that read its files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.report.report_sample import records, write_artifacts, write_runs


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A results folder with the known runs and artifacts, and the paths write_report returned for it."""
    from bench.report import write_report

    out = tmp_path_factory.mktemp("results")
    write_runs(out, records())
    write_artifacts(out)
    return out, write_report(out)
