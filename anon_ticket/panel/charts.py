"""Bar charts as plain geometry, drawn by the templates as inline SVG (no JavaScript, no images).

Everything is computed here in numbers (bar positions, rounded gridlines, which labels to print) so
the template only places elements, and the chart reads the same in any browser, print included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 720
HEIGHT = 200
LEFT = 64  # room for the value axis labels
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the category labels


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # the tooltip: category and exact value
    kind: str  # a CSS class suffix (e.g. the abuse level)


@dataclass(frozen=True, slots=True)
class Gridline:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    text: str


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    bars: list[Bar]
    gridlines: list[Gridline]
    labels: list[Label]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not any(bar.height > 0 for bar in self.bars)


@dataclass(frozen=True, slots=True)
class Point:
    category: str  # shown under the bar (some of them) and in its tooltip
    value: float
    shown: str  # the exact value as text
    kind: str = "value"


def nice_step(top: float, lines: int = 4) -> float:
    """A round gridline step (1, 2 or 5 × 10^k) so that `lines` steps cover `top`."""
    if top <= 0:
        return 1.0
    raw = top / lines
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)  # pragma: no cover (the loop ends at 10)


def axis_label(value: float, step: float) -> str:
    """A gridline's value in plain decimals, as many as the step needs (`0.000002`, never `2e-06`)."""
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def bar_chart(
    title: str,
    points: Sequence[Point],
    *,
    label_every: int = 5,
    integers: bool = False,
) -> BarChart:
    """Bars for `points`, left to right, on a value axis from 0 with round gridlines."""
    top = max((p.value for p in points), default=0.0)
    step = nice_step(top)
    if integers:
        step = max(1.0, math.ceil(step))
    lines = max(1, math.ceil(top / step)) if top > 0 else 1
    scale_top = step * lines
    plot_height = HEIGHT - TOP - BOTTOM
    axis = [axis_label(step * i, step) for i in range(lines + 1)]
    # Room for the longest value label (11 px text, ~7 px a character), never less than LEFT.
    left = max(LEFT, 14 + 7 * max(len(text) for text in axis))
    plot_width = WIDTH - left - RIGHT
    slot = plot_width / max(1, len(points))
    gap = min(4.0, slot * 0.2)
    bars = []
    labels = []
    for index, point in enumerate(points):
        height = plot_height * point.value / scale_top if scale_top else 0.0
        x = left + index * slot + gap / 2
        bars.append(
            Bar(
                x=round(x, 2),
                y=round(HEIGHT - BOTTOM - height, 2),
                width=round(slot - gap, 2),
                height=round(height, 2),
                title=f"{point.category}: {point.shown}",
                kind=point.kind,
            )
        )
        if index % label_every == 0:
            labels.append(Label(round(x + (slot - gap) / 2, 2), point.category))
    gridlines = [
        Gridline(round(HEIGHT - BOTTOM - plot_height * i / lines, 2), text) for i, text in enumerate(axis)
    ]
    return BarChart(title, bars, gridlines, labels, left=left)
