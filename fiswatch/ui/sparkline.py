"""Ops-per-second sparklines: pure functions, newest value on the right."""
import math
from typing import Optional, Sequence

BLOCKS = " \u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"  # a zero second shows as a gap
ASCII_LEVELS = " _.-=+*#"


def sparkline(values: Sequence[float], width: int, ascii: bool = False, top: Optional[float] = None) -> str:
    """The last `width` values as one bar per value, scaled to `top` (default: their maximum).

    Zero is a blank, so a stall shows as a gap; the result is always exactly `width` wide.

    >>> sparkline([0, 1, 2, 4, 8], 5, ascii=True)
    ' _.=#'
    >>> sparkline([5, 5, 0], 5, ascii=True)
    '  ## '
    >>> len(sparkline(range(100), 10))
    10
    >>> sparkline([], 3)
    '   '
    """
    if width <= 0:
        return ""
    levels = ASCII_LEVELS if ascii else BLOCKS
    shown = [max(0.0, float(v)) for v in list(values)[-width:]]
    peak = top if top is not None and top > 0 else max(shown or [0.0])
    bars = []
    for value in shown:
        if value <= 0 or peak <= 0:
            bars.append(levels[0])
            continue
        # 1 .. len(levels)-1: any non-zero value gets at least the smallest bar
        idx = int(math.ceil((min(value, peak) / peak) * (len(levels) - 1)))
        bars.append(levels[max(1, min(idx, len(levels) - 1))])
    return " " * (width - len(bars)) + "".join(bars)
