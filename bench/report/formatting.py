"""How numbers read in tables and sentences: percentages, hours, ratios, dollars."""

from __future__ import annotations

import math

MISSING = "—"  # shown where a value was not measured or does not apply


def absent(value: object) -> bool:
    """None or NaN: not measured or does not apply."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(fraction: float | None) -> str:
    """0.961 -> '96.1%'."""
    return MISSING if absent(fraction) else f"{100 * fraction:.1f}%"


def points(fraction: float | None) -> str:
    """Signed difference of two accuracies in percentage points: +0.012 -> '+1.2'."""
    return MISSING if absent(fraction) else signed(100 * fraction)


def signed(value: float | None) -> str:
    """A signed number with one decimal: 1.2 -> '+1.2'."""
    return MISSING if absent(value) else f"{value:+.1f}"


def hours(value: float | None) -> str:
    """Hours: '24.00', '0.917', '2.8e-06' (short runs stay readable)."""
    if absent(value):
        return MISSING
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"


def duration(seconds: float | None) -> str:
    """Seconds as a reader says them: '24.0 h', '12.5 min', '40 s'."""
    if absent(seconds):
        return MISSING
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    if seconds >= 10:
        return f"{seconds:.0f} s"
    return f"{seconds:.1f} s" if seconds >= 0.1 or seconds == 0 else "< 0.1 s"


def energy(joules: float | None) -> str:
    """Joules as an electricity bill says them: '1.2 kWh', '35 Wh', '0.8 Wh'."""
    if absent(joules):
        return MISSING
    wh = joules / 3600
    if wh >= 1000:
        return f"{wh / 1000:.1f} kWh"
    return f"{wh:.0f} Wh" if wh >= 10 else f"{wh:.2g} Wh"


def flops(value: float | None, partial: bool = False) -> str:
    """FLOPs in SI prefixes: '3.5e14' -> '350 TFLOP'; '>= ' where the count left layers out; 'not counted' where
    none was made (a run older than the counter)."""
    if absent(value):
        return "not counted"
    return (">= " if partial else "") + _si(value) + "FLOP"


def flop_rate(value: float | None) -> str:
    """FLOP/s achieved over fit time: '1.2 TFLOP/s'."""
    return MISSING if absent(value) else _si(value) + "FLOP/s"


def _si(value: float) -> str:
    for prefix, scale in (("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g} "


def ratio(value: float | None) -> str:
    """A compute ratio for tables: '23.4x'."""
    return MISSING if absent(value) else f"{value:.1f}x"


def ratio_words(value: float) -> str:
    """A compute ratio for sentences: '26x' from 10 up, '2.3x' below."""
    return f"{value:.0f}x" if value >= 10 else f"{value:.1f}x"


def dollars(value: float | None) -> str:
    """US dollars: '$480', '$2.30', '$0.002' (one significant digit below a cent), '$0'."""
    if absent(value):
        return MISSING
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 0.01 or value == 0:
        return f"${value:,.2f}" if value else "$0"
    return f"${value:.1g}" if value >= 1e-4 else "< $0.0001"


def price(value: float) -> str:
    """A price per hour: '$0.048', '$20'."""
    return f"${value:g}"


def count(value: float | None) -> str:
    """A whole number, or the missing mark."""
    return MISSING if absent(value) else f"{round(value):,}"


def plural(n: int, noun: str) -> str:
    """'1 run', '3 runs'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
