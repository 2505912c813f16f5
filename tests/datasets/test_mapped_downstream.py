"""Read-only memory-mapped arrays from a warm load go through the harness: a resnet and a majority run train on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.core.budget import parse_budget
from bench.datasets import load_data
from bench.run import worker
from bench.run.spec import DatasetRef, RunSpec, freeze
from tests.datasets.builders import class_members, write_zip


@pytest.mark.parametrize(("system", "options"), [("resnet", {"epochs": 1}), ("majority", {})])
def test_a_run_on_a_warm_mapped_load_is_ok(tmp_path: Path, system: str, options: dict[str, object]) -> None:
    members = {**class_members(per_class=12, side=8, prefix="train/"),
               **class_members(per_class=4, side=8, prefix="test/")}
    name = "folder:" + str(write_zip(tmp_path / "pets.zip", members))
    cold = load_data(name)
    warm = load_data(name)
    assert (cold.info["cache"], warm.info["cache"]) == ("miss", "hit")
    assert isinstance(warm.x_train, np.memmap) and not warm.x_train.flags.writeable
    record = worker.execute(RunSpec(dataset=DatasetRef(name), system=system, system_options=freeze(options),
                                    budget=parse_budget("full"), seed=0, out_dir=str(tmp_path / "out")))
    assert record.status == "ok", record.error
    assert record.data_fingerprint == cold.info["fingerprint"]
