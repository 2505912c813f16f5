"""How the report names runs: variants apart, pretrained runs always marked."""

from __future__ import annotations

import pandas as pd

from bench.report.runs import Group, label_variants


def frame(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"system": system, "system_options": options} for system, options in rows])


def test_pretrained_runs_are_marked_even_without_a_variant_to_tell_apart():
    out = label_variants(frame(("autogluon", "pretrained=True"), ("autogluon", "pretrained=True")))
    assert set(out["system"]) == {"autogluon (pretrained=True)"}


def test_pretrained_joins_the_variant_label_once():
    out = label_variants(frame(("autogluon", "backbone=resnet18;pretrained=True"),
                               ("autogluon", "backbone=resnet50;pretrained=True"),
                               ("autogluon", "pretrained=False"), ("resnet", "")))
    assert list(out["system"]) == ["autogluon (backbone=resnet18, pretrained=True)",
                                   "autogluon (backbone=resnet50, pretrained=True)",
                                   "autogluon (pretrained=False)", "resnet"]


def test_a_data_group_names_its_split_and_its_data_file_by_the_file_alone():
    group = Group("malaria", "cell", "path=../shared/data/malaria-cells-64px.zip;split=cell")
    assert group.label == "malaria (cell split; malaria-cells-64px.zip)"
    assert Group("cifar10", "", "n_train=5000").label == "cifar10 (n_train=5000)"
