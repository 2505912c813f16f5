"""How the report names runs: variants apart, pretrained runs always marked."""

from __future__ import annotations

import pandas as pd

from bench.report.runs import label_variants


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
