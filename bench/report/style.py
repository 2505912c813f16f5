"""The figures' shared look: a fixed colour-blind-safe colour and marker per system, time ticks in human units,
axis limits with a minimum span, and labels placed where they overlap nothing."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker

from bench.report import formatting as fmt
from bench.report.runs import system_name

# Okabe & Ito's colour-blind-safe palette (Okabe and Ito, "Color Universal Design", 2008), the colours seaborn's
# "colorblind" palette is built on. Every known system has its own colour and marker in every report, so that a
# reader who learnt "resnet is blue circles" in one report can read the next; resnet and resnet-tuned differ in
# lightness and hue under every common colour-vision deficiency (blue against vermillion), and in marker too.
SYSTEM_STYLES: dict[str, tuple[str, str]] = {
    "resnet": ("#0072B2", "o"),  # blue
    "resnet-tuned": ("#D55E00", "s"),  # vermillion
    "autokeras": ("#009E73", "^"),  # bluish green
    "autokeras-hybrid": ("#E69F00", "D"),  # orange
    "autokeras-default": ("#CC79A7", "v"),  # reddish purple
    "resnet-2019": ("#56B4E9", "P"),  # sky blue
    "majority": ("#000000", "X"),  # black: the floor, drawn as a line
}
# For systems not named above, in this order: the rest of seaborn's "colorblind" palette, then the same colours
# again with other markers. No spare reuses a known system's colour, so that colour keeps meaning that system.
SPARE_COLOURS = ("#CA9161", "#949494", "#FBAFE4", "#ECE133", "#8C564B", "#5D3A9B")
SPARE_MARKERS = ("p", "h", "*", "<", ">", "8", "d", "H")


@dataclass(frozen=True)
class Look:
    """How one system is drawn: its colour (hex) and marker (matplotlib's code)."""

    color: str
    marker: str


def looks(systems: Iterable[str]) -> dict[str, Look]:
    """A colour and marker per system label: a known system's fixed one; a variant of a known system
    ('autokeras (search_workers=2)') the system's own where no other label of it took it; any other the next
    spare, in the labels' sorted order, so the same systems always get the same looks."""
    labels = sorted(set(systems))
    found: dict[str, Look] = {s: Look(*SYSTEM_STYLES[s]) for s in labels if s in SYSTEM_STYLES}
    taken = {look.color for look in found.values()}
    spares = (Look(SPARE_COLOURS[i % len(SPARE_COLOURS)], SPARE_MARKERS[i % len(SPARE_MARKERS)])
              for i in range(len(SPARE_COLOURS) * len(SPARE_MARKERS)))
    for label in labels:
        if label in found:
            continue
        base = SYSTEM_STYLES.get(system_name(label))
        if base is not None and base[0] not in taken:
            found[label] = Look(*base)
            taken.add(base[0])
        else:
            found[label] = next(spares, Look("#777777", "."))
    return found


# Durations a reader says, for ticks: seconds, then minutes, hours and days.
# Doublings from a minute up, as budget ladders climb (30 s, 1 min, 2 min, 4 min).
NICE_SECONDS = (
    1, 2, 5, 10, 15, 30,
    60, 2 * 60, 4 * 60, 8 * 60, 15 * 60, 30 * 60,
    3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600,
    86400, 2 * 86400, 4 * 86400, 7 * 86400,
)
MAX_TIME_TICKS = 7  # more than this on a 7-inch axis and the labels touch
MIN_LOG_SPAN = 4.0  # a time axis covers at least this factor, so a 1% difference is not stretched edge to edge
MIN_ACCURACY_SPAN = 10.0  # points: an accuracy axis is at least this tall


def duration_label(seconds: float) -> str:
    """A tick's text: '15 s', '1 min', '2.5 min', '1 h', '2 d'."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            value = seconds / size
            return f"{value:.0f} {unit}" if math.isclose(value, round(value), rel_tol=1e-6) else f"{value:.2g} {unit}"
    return f"{seconds:.2g} s"


def log_time_axis(ax: plt.Axes, values: Sequence[float], axis: str = "x") -> None:
    """A log time axis in seconds covering `values` (at least MIN_LOG_SPAN wide), ticked in human units."""
    positive = [v for v in values if v and v > 0 and math.isfinite(v)]
    low, high = (min(positive), max(positive)) if positive else (1.0, 10.0)
    span = high / low
    if span < MIN_LOG_SPAN:
        grow = math.sqrt(MIN_LOG_SPAN / span)
        low, high = low / grow, high * grow
    else:
        low, high = low / 1.25, high * 1.25
    if len([t for t in NICE_SECONDS if low <= t <= high]) < 3:
        # Widen to the round durations on either side, so that the reader has a scale on both sides of the data.
        below = [t for t in NICE_SECONDS if t < low]
        above = [t for t in NICE_SECONDS if t > high]
        low = below[-1] / 1.15 if below else low
        high = above[0] * 1.15 if above else high
    getattr(ax, f"set_{axis}scale")("log")
    getattr(ax, f"set_{axis}lim")(low, high)
    ticks = [t for t in NICE_SECONDS if low <= t <= high]
    while len(ticks) > MAX_TIME_TICKS:
        ticks = ticks[::2]
    if len(ticks) < 2:
        # Inside a narrow range no round duration falls: tick the range's ends, rounded for reading.
        ticks = sorted({float(f"{low * 1.1:.2g}"), float(f"{high / 1.1:.2g}")})
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(mticker.FixedLocator(ticks))
    target.set_major_formatter(mticker.FuncFormatter(lambda v, _: duration_label(v)))
    target.set_minor_locator(mticker.NullLocator())


def log_flops_axis(ax: plt.Axes, values: Sequence[float], axis: str = "x") -> None:
    """A log axis of FLOPs covering `values` (at least MIN_LOG_SPAN wide), ticked at powers of ten in SI units
    ('100 GFLOP', '1 TFLOP', '10 PFLOP'), as the time axis is ticked in human durations."""
    positive = [v for v in values if v and v > 0 and math.isfinite(v)]
    low, high = (min(positive), max(positive)) if positive else (1e9, 1e10)
    span = high / low
    if span < MIN_LOG_SPAN:
        grow = math.sqrt(MIN_LOG_SPAN / span)
        low, high = low / grow, high * grow
    else:
        low, high = low / 1.25, high * 1.25
    decades = range(math.ceil(math.log10(low)), math.floor(math.log10(high)) + 1)
    if len(decades) < 2:
        # Widen to the powers of ten on either side, so that the reader has a scale on both sides of the data.
        low, high = 10 ** math.floor(math.log10(low)) / 1.15, 10 ** math.ceil(math.log10(high)) * 1.15
        decades = range(math.ceil(math.log10(low)), math.floor(math.log10(high)) + 1)
    ticks = [10.0 ** k for k in decades]
    while len(ticks) > MAX_TIME_TICKS:
        ticks = ticks[::2]
    getattr(ax, f"set_{axis}scale")("log")
    getattr(ax, f"set_{axis}lim")(low, high)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(mticker.FixedLocator(ticks))
    target.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt.flops(v)))
    target.set_minor_locator(mticker.NullLocator())


LEGEND_CHARS = 100  # characters of small legend text across a 7-inch figure


def legend_below(ax: plt.Axes, columns: int = 3) -> None:
    """The legend of the figure's axes under them, in columns: beside them it narrows the plot, on them it hides
    lines. The figure must use the constrained layout, which makes room for it."""
    fig = ax.figure
    found: dict[str, object] = {}
    for axes in fig.axes:
        if axes.get_legend() is not None:
            axes.get_legend().remove()  # seaborn's, drawn on the axes: the figure's replaces it
        handles, labels = axes.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            found.setdefault(label, handle)
    if found:
        # As many columns as the labels leave room for across the figure.
        fits = max(1, int(LEGEND_CHARS * fig.get_figwidth() / 7.0) // (max(map(len, found)) + 6))
        fig.legend(list(found.values()), list(found), fontsize="small", loc="outside lower center",
                   ncol=min(columns, len(found), fits), frameon=False)


def accuracy_limits(ax: plt.Axes, centres: Iterable[float], floor: float = 0.0, ceiling: float = 100.0) -> None:
    """Y limits (percent) around the values that matter, the means, not an interval's extent; at least
    MIN_ACCURACY_SPAN tall and never outside [floor, ceiling]."""
    values = [v for v in centres if v is not None and math.isfinite(v)]
    if not values:
        return
    low, high = min(values), max(values)
    pad = max((high - low) * 0.25, (MIN_ACCURACY_SPAN - (high - low)) / 2, 1.0)
    low, high = low - pad, high + pad
    if high > ceiling:
        low, high = low - (high - ceiling), ceiling
    if low < floor:
        low, high = floor, min(ceiling, high + (floor - low))
    ax.set_ylim(low, high)


def clip_percent(low: float, high: float) -> tuple[float, float]:
    """An interval in percent clipped to what accuracy can be."""
    return max(0.0, low), min(100.0, high)


# Where a point's label may go, in points from it: right, above, below, left, then further out.
LABEL_OFFSETS = ((5, 4), (5, -11), (-5, 6), (-5, -12), (8, 12), (8, -18))


def place_labels(ax: plt.Axes, items: Sequence[tuple[float, float, str, str]], fontsize: float = 7) -> int:
    """Writes each (x, y, text, colour) beside its point at the first offset where it overlaps no label placed
    before and stays inside the axes; a label with no such place is left out (the tables name every point).
    Returns how many were left out."""
    fig = ax.figure
    fig.draw_without_rendering()  # the layout engine places the axes: labels are placed where they will be drawn
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = []
    skipped = 0
    for x, y, text, colour in items:
        for dx, dy in LABEL_OFFSETS:
            ha = "left" if dx >= 0 else "right"
            label = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                                color=colour, ha=ha)
            box = label.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
            label.remove()
        else:
            skipped += 1
    return skipped
