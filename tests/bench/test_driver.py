"""The driver's plan: which runs execute, which are done, adopted from their folders or skipped, and why."""

from __future__ import annotations

from pathlib import Path

from bench.core import rundir
from bench.core.budget import parse_budget
from bench.run.driver import plan
from bench.run.records import RunRecord, record_for
from bench.run.spec import DatasetRef, RunSpec
from bench.run.supervise import Limits


def spec(out: Path, seed: int = 0, dataset: str = "digits") -> RunSpec:
    return RunSpec(dataset=DatasetRef(dataset), system="majority", budget=parse_budget("full"), seed=seed,
                   out_dir=str(out))


def ok(s: RunSpec) -> RunRecord:
    return record_for(s, "ok", accuracy=0.1)


def test_recorded_runs_are_done_left_behind_records_adopted_and_the_rest_executed(tmp_path: Path) -> None:
    done, left, fresh = spec(tmp_path, 0), spec(tmp_path, 1), spec(tmp_path, 2)
    folder = rundir.run_dir(left.out_dir, left.run_id)
    folder.mkdir(parents=True)
    (folder / rundir.RECORD).write_text(ok(left).to_json())  # a killed driver's run, not in the table
    planned = plan([done, left, fresh], {done.run_id: ok(done)}, Limits())
    assert planned.todo == (fresh,)
    assert [r.run_id for r in planned.adopted] == [left.run_id]
    assert planned.already_done == 2 and planned.skipped == () and planned.notes == ()


def test_force_executes_every_run_and_adopts_none(tmp_path: Path) -> None:
    done, failed = spec(tmp_path, 0), spec(tmp_path, 1)
    planned = plan([done, failed], {done.run_id: ok(done), failed.run_id: record_for(failed, "failed")}, Limits(),
                   force=True)
    assert planned.todo == (done, failed) and planned.already_done == 0 and planned.adopted == ()


def test_a_data_set_that_cannot_be_found_skips_its_runs_with_the_reason(tmp_path: Path) -> None:
    here, missing = spec(tmp_path), spec(tmp_path, dataset=f"folder:{tmp_path / 'absent'}")
    planned = plan([here, missing], {}, Limits())
    assert planned.todo == (here,)
    [skipped] = planned.skipped
    assert skipped.status == "skipped" and skipped.run_id == missing.run_id and "absent" in skipped.error
    assert len(planned.notes) == 1 and planned.notes[0].startswith("[yellow]skipped[/] folder:")
