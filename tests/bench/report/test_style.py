"""The figures' look: a fixed colour-blind-safe colour and marker per system, time ticks in human units, axes that
keep to what matters."""

import colorsys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from bench.report.style import (  # noqa: E402
    MIN_ACCURACY_SPAN,
    MIN_LOG_SPAN,
    SYSTEM_STYLES,
    accuracy_limits,
    clip_percent,
    duration_label,
    log_time_axis,
    looks,
    place_labels,
)


def _deuteranope(hex_colour: str) -> tuple[float, float, float]:
    """The colour as a deuteranope sees it (Viénot, Brettel and Mollon 1999, linear RGB)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(hex_colour)]
    r, g, b = lin
    return (0.29031 * r + 0.70969 * g, 0.29031 * r + 0.70969 * g, -0.02197 * r + 0.02197 * g + b)


def test_a_known_system_has_the_same_look_in_every_report():
    alone = looks(["resnet"])
    crowded = looks(["zeta", "resnet", "autokeras", "alpha", "resnet-tuned"])
    assert alone["resnet"] == crowded["resnet"] == looks(["resnet-tuned", "resnet"])["resnet"]
    assert crowded["resnet"].color == SYSTEM_STYLES["resnet"][0]


def test_unknown_systems_get_free_looks_deterministically_and_never_a_known_systems_colour():
    first = looks(["mine", "yours", "resnet"])
    assert first == looks(["resnet", "yours", "mine"])
    known = {c for c, _ in SYSTEM_STYLES.values()}
    assert first["mine"].color not in known and first["yours"].color not in known
    assert first["mine"] != first["yours"]
    many = looks([f"system{i}" for i in range(30)])
    assert len({(v.color, v.marker) for v in many.values()}) >= 24


def test_a_variant_takes_its_systems_look_when_the_system_is_absent():
    found = looks(["autokeras (search_workers=1)", "autokeras (search_workers=2)"])
    assert found["autokeras (search_workers=1)"].color == SYSTEM_STYLES["autokeras"][0]
    assert found["autokeras (search_workers=2)"].color != SYSTEM_STYLES["autokeras"][0]


def test_resnet_and_resnet_tuned_differ_under_deuteranopia():
    a, b = (_deuteranope(SYSTEM_STYLES[s][0]) for s in ("resnet", "resnet-tuned"))
    assert sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5 > 0.3
    # Their hues, as a deuteranope sees them, are on opposite sides (blue against yellow-brown).
    hue = [colorsys.rgb_to_hsv(*[min(1.0, max(0.0, v)) for v in c])[0] for c in (a, b)]
    assert abs(hue[0] - hue[1]) > 0.25
    assert SYSTEM_STYLES["resnet"][1] != SYSTEM_STYLES["resnet-tuned"][1]


@pytest.mark.parametrize(("seconds", "text"), [(15, "15 s"), (60, "1 min"), (120, "2 min"), (90, "1.5 min"),
                                               (3600, "1 h"), (86400, "1 d"), (0.5, "0.5 s")])
def test_durations_read_as_a_person_says_them(seconds, text):
    assert duration_label(seconds) == text


def test_a_time_axis_is_ticked_in_human_units_and_never_narrower_than_its_minimum_span():
    fig, ax = plt.subplots()
    log_time_axis(ax, [15, 30, 60, 120, 240])
    labels = [ax.xaxis.get_major_formatter()(t, i) for i, t in enumerate(ax.get_xticks())]
    assert labels == ["15 s", "30 s", "1 min", "2 min", "4 min"]
    log_time_axis(ax, [121.9, 123.3])  # a 1% difference is not stretched edge to edge
    low, high = ax.get_xlim()
    assert high / low >= MIN_LOG_SPAN - 1e-9
    assert all("e" not in ax.xaxis.get_major_formatter()(t, 0) for t in ax.get_xticks())
    plt.close(fig)


def test_accuracy_axes_keep_to_the_means_inside_0_to_100_and_span_at_least_the_minimum():
    fig, ax = plt.subplots()
    accuracy_limits(ax, [96.0, 96.5])
    low, high = ax.get_ylim()
    assert high - low >= MIN_ACCURACY_SPAN and high <= 100 and low <= 96.0
    accuracy_limits(ax, [99.5])
    assert ax.get_ylim()[1] == 100
    accuracy_limits(ax, [90.0, 95.0])
    assert ax.get_ylim()[0] > 40  # an interval of 43.5-122.2 % does not set the axis: the means do
    assert clip_percent(43.5, 122.2) == (43.5, 100.0) and clip_percent(-3, 50) == (0, 50)
    plt.close(fig)


def test_labels_never_overlap_and_those_with_no_room_are_left_out():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    items = [(5.0, 5.0, "a long label", "black")] * 8  # all at one point: a few fit around it, the rest not
    left_out = place_labels(ax, items)
    placed = [t.get_window_extent(fig.canvas.get_renderer()) for t in ax.texts]
    assert len(placed) + left_out == len(items) and left_out > 0
    assert not any(a.overlaps(b) for i, a in enumerate(placed) for b in placed[i + 1:])
    plt.close(fig)
