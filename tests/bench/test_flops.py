"""The FLOP counter: exact values on small models counted by hand, published counts of well-known networks, and
XLA's own count of the same model."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import pandas as pd
import pytest

from bench.core.budget import parse_budget
from bench.measure import flops
from bench.report.tables import Prices
from tests.conftest import REPO


def test_conv_dense_model_by_hand() -> None:
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3),  # 6x6x4 outputs, 3*3*3 multiply-adds each
        keras.layers.ReLU(),  # one per output
        keras.layers.MaxPooling2D(2),  # 3x3x4 outputs, a 2x2 window each
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(5),  # 36 inputs x 5 units
    ])
    conv, relu, pool, dense = 2 * 6 * 6 * 4 * 27, 6 * 6 * 4, 3 * 3 * 4 * 4, 2 * 36 * 5
    assert flops.count(model) == flops.Flops(conv + relu + pool + dense)


def test_every_kind_of_convolution_by_hand() -> None:
    x = keras.Input((10, 10, 4))
    depthwise = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)  # 10x10x8, 9 each
    separable = keras.layers.SeparableConv2D(6, 3)(x)  # 8x8 positions: 4 maps x 9, then 4 -> 6
    transposed = keras.layers.Conv2DTranspose(2, 3, strides=2)(x)  # each of 400 inputs over 3x3x2
    one_d = keras.layers.Conv1D(3, 5, padding="same")(keras.layers.Reshape((100, 4))(x))  # 100x3, 5*4 each
    three_d = keras.layers.Conv3D(2, 3)(keras.layers.Reshape((10, 10, 4, 1))(x))  # 8x8x2x2, 27 each
    model = keras.Model(x, [depthwise, separable, transposed, one_d, three_d])
    expected = 2 * (10 * 10 * 8 * 9 + 8 * 8 * (4 * 9 + 4 * 6) + 400 * 9 * 2 + 100 * 3 * 20 + 8 * 8 * 2 * 2 * 27)
    assert flops.count(model).forward == expected


def test_normalisation_merges_and_nested_models_by_hand() -> None:
    inner = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(2, 1, use_bias=False)], name="inner")
    x = keras.Input((4, 4, 2))
    y = inner(x)  # 16 x 2 outputs, 2 inputs each
    y = keras.layers.BatchNormalization()(y)  # 2 per element
    y = keras.layers.Add()([x, y])  # 1 per element
    y = keras.layers.LayerNormalization()(y)  # 2 per element
    y = keras.layers.GlobalAveragePooling2D()(y)  # 1 per input element
    y = keras.layers.Activation("softmax")(y)  # 1 per output
    model = keras.Model(x, y)
    assert flops.count(model).forward == 2 * 32 * 2 + 2 * 32 + 32 + 2 * 32 + 32 + 2


def test_attention_and_einsum_by_hand() -> None:
    q, mask = keras.Input((6, 8)), keras.Input((6, 6))
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(q, q, attention_mask=mask)
    einsum = keras.layers.EinsumDense("abc,cd->abd", output_shape=(6, 3))(q)  # 6x3 outputs, 8 each
    model = keras.Model([q, mask], [attention, einsum])
    # q, k, v projections 6x8 -> 2x4 each; scores and weighting 2 heads x 6x6 x 4 each; output 6x(2x4) -> 8.
    macs = 3 * 6 * 8 * 8 + 2 * 6 * 6 * (4 + 4) + 6 * 8 * 8
    assert flops.count(model).forward == 2 * macs + 2 * 6 * 6 + 2 * 6 * 3 * 8


def test_augmentation_is_not_counted_and_unknown_layers_are_listed() -> None:
    class Odd(keras.layers.Layer):
        def call(self, x):  # noqa: ANN001, ANN202
            return x * 2

    class Declared(keras.layers.Layer):
        flops_per_output = 3

        def call(self, x):  # noqa: ANN001, ANN202
            return x * 2 + 1

    x = keras.Input((4, 4, 1))
    y = keras.layers.RandomFlip()(x)
    y = keras.layers.Resizing(8, 8)(y)
    model = keras.Model(x, Declared()(Odd()(keras.layers.Dense(2)(y))))
    counted = flops.count(model)
    assert counted.forward == 2 * 64 * 2 + 3 * 64 * 2
    assert counted.uncounted == ("Odd",) and not counted.complete


def test_training_is_three_forward_passes_an_example() -> None:
    assert flops.training_flops(100, 7) == 2100


def test_resnet50_at_224_px_matches_its_published_count() -> None:
    """He et al. (2015) give ResNet-50 3.8 G multiply-adds a 224 px image; torchvision's v1.5 (stride in the 3x3
    conv, not the first 1x1) is the 4.1 G often quoted. Keras' ResNet50 is v1: its convolutions and dense layer
    alone are 3.86 G; batch norm, activations and adds bring about 0.02 G more."""
    model = keras.applications.ResNet50(weights=None)
    # Each convolution's multiply-adds from its kernel and output shapes (h x w positions, kh x kw x c_in x c_out
    # each), the dense layer's from its kernel: the paper's arithmetic, independent of the counter.
    macs = sum(math.prod(layer.output.shape[1:-1]) * math.prod(layer.kernel.shape)
               for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    macs += sum(math.prod(layer.kernel.shape) for layer in model.layers if isinstance(layer, keras.layers.Dense))
    assert 3.8e9 <= macs <= 3.9e9
    whole = flops.count(model)
    assert whole.complete and 3.8e9 <= whole.forward / 2 <= 4.1e9


def test_mobilenet_v2_and_efficientnet_b0_match_their_papers() -> None:
    """The papers' 'FLOPs' are multiply-adds: MobileNetV2 300 M, EfficientNet-B0 0.39 G, at 224 px."""
    mobilenet = flops.count(keras.applications.MobileNetV2(weights=None))
    efficientnet = flops.count(keras.applications.EfficientNetB0(weights=None))
    assert mobilenet.complete and efficientnet.complete
    assert mobilenet.forward / 2 == pytest.approx(300e6, rel=0.05)
    assert efficientnet.forward / 2 == pytest.approx(0.39e9, rel=0.05)


XLA_COUNT = textwrap.dedent("""
    import json, jax, keras
    from bench.measure import flops
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3, use_bias=False),
                              keras.layers.Conv2D(16, 3, strides=2, use_bias=False), keras.layers.Flatten(),
                              keras.layers.Dense(10, use_bias=False)])
    forward = jax.jit(lambda w, x: model.stateless_call(w, [], x)[0])
    compiled = forward.lower([v.value for v in model.trainable_variables], jax.numpy.zeros((4, 16, 16, 3))).compile()
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    print(json.dumps({"xla": analysis["flops"] / 4, "ours": flops.count(model).forward}))
""")


def test_a_small_model_matches_xlas_own_count() -> None:
    """The same Keras model under the JAX backend, compiled by XLA, whose cost analysis counts a multiply-add as
    two FLOPs too (4 images, so per image)."""
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", XLA_COUNT], capture_output=True, text=True, env=env, cwd=REPO,
                         check=True, timeout=300).stdout
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["ours"] == 2 * (14 * 14 * 8 * 27 + 6 * 6 * 16 * 72 + 576 * 10)
    assert counts["ours"] == pytest.approx(counts["xla"], rel=0.01)


@pytest.mark.slow
def test_a_baseline_run_through_the_command_line_records_its_flops(tmp_path) -> None:
    """runs.csv's train_flops is three forward passes of the recipe's network for every image its steps trained
    (the budget probe's included), predict_flops one per test image and view; the report's cost table shows them."""
    from bench.baselines.training import PROBE_STEPS, validation_split
    from bench.datasets import load_data
    from bench.systems.resnet import ResNet

    run = subprocess.run([sys.executable, "-m", "bench", "run", "--dataset", "digits", "--system", "resnet",
                          "--budget", "5s", "--seed", "0", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr
    [row] = pd.read_csv(tmp_path / "runs.csv").to_dict("records")
    [meta] = [json.loads(p.read_text()) for p in tmp_path.glob("runs/*/metadata.json")]
    extras = meta["extras"]

    recipe = ResNet().make_recipe("digits", 5)
    data = load_data("digits", {})
    forward = flops.count(recipe.build(data.x_train.shape[1:], data.n_classes))
    assert forward.complete and pd.isna(row["flops_uncounted"])
    train_split = len(validation_split(data.y_train, recipe.val_fraction, 0)[0])
    steps = round(extras["epochs_trained"] * (train_split // recipe.batch_size))
    assert extras["examples_trained"] == (1 + PROBE_STEPS + steps) * recipe.batch_size
    assert row["train_flops"] == pytest.approx(3 * forward.forward * extras["examples_trained"])
    assert row["predict_flops"] == pytest.approx(forward.forward * len(data.y_test))  # the generic recipe: one view
    assert row["flops_per_s"] == pytest.approx(row["train_flops"] / row["fit_s"])

    report = subprocess.run([sys.executable, "-m", "bench", "report", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert report.returncode == 0, report.stderr
    cost = pd.read_csv(next(tmp_path.rglob("cost.csv")))
    assert cost["train_flops"].iloc[0] == pytest.approx(row["train_flops"])
    assert "Training FLOPs" in (tmp_path / "REPORT.md").read_text()


@pytest.mark.slow
def test_a_layer_the_counter_cannot_count_is_named_in_the_record_and_metadata_and_the_report_says_at_least(
        tmp_path) -> None:
    from bench.report.runs import Group
    from bench.report.tables import COST, cost_rows, summarize
    from bench.run.execute import LocalExecutor
    from bench.run.spec import DatasetRef, RunSpec

    spec = RunSpec(DatasetRef("digits"), "tests.bench.fakes:OddLayerNet", parse_budget("full"), 0,
                   out_dir=str(tmp_path))
    record = LocalExecutor().run(spec)
    assert record.status == "ok", record.error
    forward = 2 * 64 * 4  # the Dense layer on 8x8 digits; the custom layer is not counted
    assert record.flops_uncounted == "Odd" and record.train_flops == 3 * forward * record.n_train
    [meta] = [json.loads(p.read_text()) for p in tmp_path.glob("runs/*/metadata.json")]
    assert meta["flops_uncounted"] == ["Odd"]
    runs = pd.DataFrame([dataclasses.asdict(record)])
    shown = COST.display(cost_rows(summarize(Group("digits", record.split, ""), runs, "resnet"), Prices()))
    assert shown["Training FLOPs"].iloc[0].startswith(">= ")
