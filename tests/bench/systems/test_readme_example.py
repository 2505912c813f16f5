"""The example of adding a system in docs/extending.md works as printed, through the harness."""

from __future__ import annotations

import importlib.metadata
import os
import re
from pathlib import Path

import pytest

from bench.core.budget import parse_budget
from bench.run.execute import LocalExecutor
from bench.run.spec import DatasetRef, RunSpec
from tests.conftest import REPO


def readme_example() -> str:
    text = (REPO / "docs" / "extending.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- example: system -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/extending.md lost its system example"
    return match.group(1)


def test_the_readme_system_runs_and_is_recorded_with_its_role_and_library(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mymodule.py").write_text(readme_example(), encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ["PYTHONPATH"]]))
    spec = RunSpec(DatasetRef("digits"), "mymodule:PixelLogReg", parse_budget("full"), 0, out_dir=str(tmp_path))
    record = LocalExecutor().run(spec)
    assert record.status == "ok", record.error
    assert record.accuracy > 0.9  # logistic regression on digits' pixels: about 96%
    assert (record.role, record.library) == ("other", "scikit-learn")
    assert record.library_version == importlib.metadata.version("scikit-learn")
