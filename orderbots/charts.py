"""Inline SVG charts drawn in Python, for self-contained HTML reports (no scripts, no assets).

Each function returns ``Markup`` safe to place in an autoescaped page: every text
taken from data is escaped. A chart always has a visible title, axis labels
and a ``<title>`` for screen readers. A chart with nothing to draw returns
``empty_state(title, message)`` instead - a paragraph, never an empty SVG.

- ``bar_chart(title, categories, series, ...)``: vertical bars; several series
  are drawn side by side, or on top of each other with ``stacked=True``.
- ``pareto_chart(title, categories, counts, cumulative, ...)``: bars, most
  frequent first, with the cumulative share as a line on a 0-100 % right axis.

``series`` is a list of ``(name, values)``; a legend is drawn when there is more
than one. ``fmt`` formats axis values.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, Sequence

from markupsafe import Markup

WIDTH, HEIGHT = 760, 360
FLAT_LABELS_SAVE = 60  # height saved when category labels are written level, not slanted
LEFT, RIGHT, TOP, BOTTOM = 64, 56, 52, 116
PALETTE = ("#2f6db5", "#e07b24", "#3a9a54", "#c23b3b", "#7a5bb5", "#8c6d31", "#d45fa6", "#5f7f8c")
LINE_COLOUR = "#c23b3b"
MAX_LABEL = 22
MAX_TICK_LABELS = 31  # more categories than this: only every n-th gets a label
_ids = itertools.count(1)


def empty_state(title: str, message: str) -> Markup:
    """What a chart shows when there is no data."""
    return Markup('<div class="chart empty"><h3>{}</h3><p class="empty-state">{}</p></div>').format(title, message)


def nice_ticks(top: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round axis ticks from 0 up to at least ``top``; ``whole``: only whole numbers (for counts)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = max(top / count, 1) if whole else top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def number(value: float) -> str:
    """A tick or value label: integers without decimals, else up to 2 significant decimals."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "\u2026"


class _Canvas:
    """Collects SVG elements for one chart of plot area ``LEFT..WIDTH-RIGHT`` x ``TOP..HEIGHT-BOTTOM``;
    ``slanted``: category labels are long or many, and are written at an angle."""

    def __init__(self, title: str, x_label: str, y_label: str, slanted: bool):
        self.id = f"chart-{next(_ids)}"
        self.title, self.x_label, self.slanted = title, x_label, slanted
        self.height = HEIGHT if slanted else HEIGHT - FLAT_LABELS_SAVE
        self.parts: list[Markup] = []
        self.plot_w, self.plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        self.add('<text class="chart-title" x="{}" y="22" text-anchor="middle">{}</text>', WIDTH / 2, title)
        self.add('<text class="axis-label" transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>',
                 TOP + self.plot_h / 2, y_label)

    def add(self, template: str, *args) -> None:
        self.parts.append(Markup(template).format(*args))

    def y_axis(self, ticks: list[float], fmt: Callable[[float], str], right: bool = False) -> None:
        x = WIDTH - RIGHT if right else LEFT
        self.add('<line class="axis" x1="{0}" y1="{1}" x2="{0}" y2="{2}"/>', x, TOP, TOP + self.plot_h)
        for tick in ticks:
            y = self.y(tick, ticks[-1])
            if not right:
                self.add('<line class="grid" x1="{0}" y1="{2}" x2="{1}" y2="{2}"/>', LEFT, WIDTH - RIGHT, y)
            self.add('<text class="tick" x="{}" y="{}" text-anchor="{}">{}</text>',
                     x + (6 if right else -6), y + 4, "start" if right else "end", fmt(tick))

    def x_axis(self, categories: Sequence[str], band: float) -> None:
        base = TOP + self.plot_h
        self.add('<line class="axis" x1="{0}" y1="{2}" x2="{1}" y2="{2}"/>', LEFT, WIDTH - RIGHT, base)
        every = math.ceil(len(categories) / MAX_TICK_LABELS)
        for i, label in enumerate(categories):
            if i % every:
                continue
            x = LEFT + band * (i + 0.5)
            if self.slanted:
                self.add('<text class="tick" transform="translate({} {}) rotate(-35)" text-anchor="end">'
                         '<title>{}</title>{}</text>', x + 4, base + 14, label, _short(label))
            else:
                self.add('<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>', x, base + 16, label)
        self.add('<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text>',
                 LEFT + self.plot_w / 2, self.height - 8, self.x_label)

    def y(self, value: float, top: float) -> float:
        return TOP + self.plot_h * (1 - value / top)

    def legend(self, names: Sequence[str]) -> None:
        x = LEFT
        for name, colour in zip(names, PALETTE):
            self.add('<rect class="legend" x="{}" y="30" width="10" height="10" fill="{}"/>', x, colour)
            self.add('<text class="tick" x="{}" y="39">{}</text>', x + 14, name)
            x += 24 + 7 * len(name)

    def svg(self) -> Markup:
        return Markup('<div class="chart"><svg id="{0}" role="img" aria-labelledby="{0}-title" '
                      'viewBox="0 0 {1} {2}" width="{1}" height="{2}" xmlns="http://www.w3.org/2000/svg">'
                      '<title id="{0}-title">{3}</title>{4}</svg></div>').format(
            self.id, WIDTH, self.height, self.title, Markup("").join(self.parts))


def bar_chart(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
              x_label: str, y_label: str, stacked: bool = False, empty: str = "No data yet",
              fmt: Callable[[float], str] = number, gap: float = 0.2) -> Markup:
    """Vertical bars per category; see module docstring."""
    if not categories or not any(v for _, values in series for v in values):
        return empty_state(title, empty)
    sums = [sum(values[i] for _, values in series) for i in range(len(categories))]
    top = max(sums) if stacked else max(v for _, values in series for v in values)
    ticks = nice_ticks(top, whole=all(float(v).is_integer() for _, values in series for v in values))
    canvas = _Canvas(title, x_label, y_label, slanted=len(categories) > 8 or max(map(len, categories)) > 10)
    canvas.y_axis(ticks, fmt)
    band = canvas.plot_w / len(categories)
    inner = band * (1 - gap)
    width = inner if stacked else inner / len(series)
    for i, category in enumerate(categories):
        x0, base = LEFT + band * i + band * gap / 2, 0.0
        for s, ((name, values), colour) in enumerate(zip(series, itertools.cycle(PALETTE))):
            value = values[i]
            if value <= 0:
                continue
            bottom = base if stacked else 0.0
            y_top, y_bottom = canvas.y(bottom + value, ticks[-1]), canvas.y(bottom, ticks[-1])
            x = x0 if stacked else x0 + s * width
            canvas.add('<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}">'
                       '<title>{}{}: {}</title></rect>', x, y_top, max(width, 1), y_bottom - y_top, colour,
                       category, f" - {name}" if len(series) > 1 else "", fmt(value))
            if stacked:
                base += value
    canvas.x_axis(categories, band)
    if len(series) > 1:
        canvas.legend([name for name, _ in series])
    return canvas.svg()


def pareto_chart(title: str, categories: Sequence[str], counts: Sequence[float], cumulative: Sequence[float], *,
                 x_label: str, y_label: str, empty: str = "No data yet") -> Markup:
    """Bars of ``counts`` (already sorted, largest first) and the ``cumulative`` share (0..1) as a line."""
    if not categories or not any(counts):
        return empty_state(title, empty)
    ticks = nice_ticks(max(counts), whole=True)
    canvas = _Canvas(title, x_label, y_label, slanted=True)
    canvas.y_axis(ticks, number)
    canvas.y_axis([0, 0.25, 0.5, 0.75, 1.0], lambda v: f"{v:.0%}", right=True)
    canvas.add('<text class="axis-label" transform="translate({} {}) rotate(90)" text-anchor="middle">'
               'cumulative share</text>', WIDTH - 8, TOP + canvas.plot_h / 2)
    band = canvas.plot_w / len(categories)
    points = []
    for i, (category, count, share) in enumerate(zip(categories, counts, cumulative)):
        y_top = canvas.y(count, ticks[-1])
        canvas.add('<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}">'
                   '<title>{}: {}</title></rect>', LEFT + band * (i + 0.1), y_top, band * 0.8,
                   TOP + canvas.plot_h - y_top, PALETTE[0], category, number(count))
        points.append((LEFT + band * (i + 0.5), canvas.y(share, 1.0)))
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
    canvas.add('<path class="cumulative" d="{}" fill="none" stroke="{}" stroke-width="2"/>', path, LINE_COLOUR)
    for (x, y), category, share in zip(points, categories, cumulative):
        canvas.add('<circle class="point" cx="{:.1f}" cy="{:.1f}" r="3.5" fill="{}"><title>{}: {:.0%} cumulative'
                   '</title></circle>', x, y, LINE_COLOUR, category, share)
    canvas.x_axis(categories, band)
    return canvas.svg()
