"""Run metadata: the git commit marks code changes as dirty, not the results a run writes."""

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.run import metadata


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_is_dirty_for_code_changes_not_for_results(tmp_path: Path, monkeypatch) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "runs.csv").write_text("run_id\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    monkeypatch.setattr(metadata, "REPO_ROOT", tmp_path)

    def commit() -> str:
        metadata.git_commit.cache_clear()
        return metadata.git_commit()

    try:
        clean = commit()
        assert len(clean) == 40 and not clean.endswith("-dirty")
        (tmp_path / "results" / "runs.csv").write_text("run_id\nabc\n")
        assert commit() == clean
        (tmp_path / "code.py").write_text("x = 2\n")
        assert commit() == clean + "-dirty"
    finally:
        metadata.git_commit.cache_clear()
