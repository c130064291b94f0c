"""Where the wall time went (pure): each check's start-end bar per worker, the critical path
marked; rendered as text bars, SVG, or an HTML page around the SVG.

Times are offsets in seconds from the gate's start. The critical path is the longest chain of
measured durations through ``needs`` among the checks that ran -- the same chain whose length
the summary reports as "critical path".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from pytest_parex import graph
from pytest_parex.output.text import sanitize, seconds
from pytest_parex.results import CheckResult, GateResult, Status

NAME_WIDTH = 20
"""Longest check name shown whole in the text timeline; longer names are cut with '~'."""
MIN_BAR_WIDTH = 10


@dataclass(frozen=True)
class Bar:
    """One check that ran: where and when."""

    name: str
    agent: str
    worker: str
    status: Status
    start: float
    end: float
    critical: bool


@dataclass(frozen=True)
class Timeline:
    bars: tuple[Bar, ...]
    """Grouped by worker (natural order: gw2 before gw10), then by start."""
    wall: float
    critical_path: tuple[str, ...]
    critical_length: float
    not_run: tuple[tuple[str, str], ...]
    """(name, status) of the checks that never started."""

    @property
    def workers(self) -> list[str]:
        return list(dict.fromkeys(bar.worker for bar in self.bars))


def _worker_key(worker: str) -> tuple[str, int, str]:
    match = re.fullmatch(r"(.*?)(\d+)", worker)
    if match:
        return match.group(1), int(match.group(2)), worker
    return worker, -1, worker


def critical_chain(
    results: Sequence[CheckResult], needs: Mapping[str, Sequence[str]]
) -> tuple[tuple[str, ...], float]:
    """The longest chain of durations through ``needs`` among the checks that ran, first
    check first, and its length. Ties go to the check listed first."""
    ran = [r for r in results if r.ran]
    return graph.critical_chain([r.name for r in ran], needs, {r.name: r.duration for r in ran})


def build(
    gate: GateResult, origin: float, needs: Mapping[str, Sequence[str]] | None = None
) -> Timeline:
    """The timeline of ``gate``; ``origin`` is the gate's start (``time.time()``)."""
    chain, length = critical_chain(gate.results, needs or {})
    on_path = set(chain)
    wall = max(gate.wall, 0.0)
    bars = []
    not_run = []
    for r in gate.results:
        if r.start is None:
            not_run.append((r.name, r.status))
            continue
        start = min(max(r.start - origin, 0.0), wall)
        end = r.end - origin if r.end is not None else start + r.duration
        end = min(max(end, start), wall)
        bars.append(
            Bar(r.name, r.agent, r.worker or "main", r.status, start, end, r.name in on_path)
        )
    bars.sort(key=lambda b: (_worker_key(b.worker), b.start, b.name))
    return Timeline(tuple(bars), wall, chain, length, tuple(not_run))


# ---------------------------------------------------------------------------------- text


def _cut(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "~"


def _span(t: float, wall: float, cells: int) -> int:
    return round(t / wall * cells) if wall > 0 else 0


def render_text(timeline: Timeline, width: int = 80) -> str:
    """Text bars, one line per check, grouped by worker; ``#`` marks the critical path."""
    out = [_headline(timeline)]
    if timeline.bars:
        names = [_cut(sanitize(b.name), NAME_WIDTH) for b in timeline.bars]
        workers = [sanitize(b.worker) for b in timeline.bars]
        suffixes = [_suffix(b) for b in timeline.bars]
        worker_width, name_width = max(map(len, workers)), max(map(len, names))
        left = worker_width + 2 + name_width + 1
        cells = max(MIN_BAR_WIDTH, width - left - 3 - max(map(len, suffixes)))
        previous = None
        for bar, name, worker, suffix in zip(timeline.bars, names, workers, suffixes, strict=True):
            shown = worker if worker != previous else ""
            previous = worker
            first = min(_span(bar.start, timeline.wall, cells), cells - 1)
            last = max(_span(bar.end, timeline.wall, cells), first + 1)
            row = " " * first + ("#" if bar.critical else "=") * (last - first)
            head = f"{shown:<{worker_width}}  {name:<{name_width}} "
            out.append(f"{head}|{row:<{cells}}| {suffix}")
        end = seconds(timeline.wall)
        out.append(" " * (left + 1) + "0s".ljust(cells - len(end)) + end)
    if timeline.not_run:
        listed = ", ".join(f"{sanitize(n)} ({s})" for n, s in timeline.not_run)
        out.append(f"not run: {listed}")
    return "\n".join(out) + "\n"


def _headline(timeline: Timeline, marker: str = "marked #") -> str:
    count = len(timeline.workers)
    text = f"wall {seconds(timeline.wall)} on {count} worker{'s' if count != 1 else ''}"
    if timeline.critical_path:
        chain = " > ".join(sanitize(n) for n in timeline.critical_path)
        text += f"; critical path {chain} ({seconds(timeline.critical_length)}), {marker}"
    return text


def _suffix(bar: Bar) -> str:
    text = f"{seconds(bar.start)}-{seconds(bar.end)}"
    if bar.status is not Status.PASSED:
        text += f" {bar.status}"
    return text


# ---------------------------------------------------------------------------------- svg

_FILL = {
    Status.PASSED: "#4caf50",
    Status.FLAKY: "#ffb300",
    Status.FAILED: "#e53935",
    Status.TIMEOUT: "#e53935",
    Status.ERROR: "#e53935",
    Status.SKIPPED: "#9e9e9e",
    Status.CANCELLED: "#9e9e9e",
}
_ROW, _LABEL, _PLOT, _PAD = 22, 220, 640, 10


def _ticks(wall: float) -> list[float]:
    """Round tick values from 0 to ``wall``, about five of them."""
    if wall <= 0:
        return [0.0]
    raw = wall / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(magnitude * f for f in (1, 2, 5, 10) if magnitude * f >= raw)
    return [round(i * step, 6) for i in range(int(wall / step + 1e-9) + 1)]


def render_svg(timeline: Timeline) -> str:
    """A self-contained SVG: one row per check, grouped by worker, critical path outlined."""
    rows = len(timeline.bars)
    top = 2 * _ROW
    height = top + rows * _ROW + 2 * _ROW
    width = _LABEL + _PLOT + 2 * _PAD
    wall = timeline.wall
    headline = _headline(timeline, "outlined")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">',
        f"<title>{escape(headline)}</title>",
        f'<text x="{_PAD}" y="{_ROW - 6}">{escape(headline)}</text>',
    ]

    def x(t: float) -> float:
        return _LABEL + (t / wall * _PLOT if wall > 0 else 0.0)

    for tick in _ticks(wall):
        out.append(
            f'<line x1="{x(tick):.1f}" y1="{top - 4}" x2="{x(tick):.1f}" '
            f'y2="{top + rows * _ROW}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{x(tick):.1f}" y="{top - 8}" text-anchor="middle">{tick:g}s</text>')
    previous = None
    for i, bar in enumerate(timeline.bars):
        y = top + i * _ROW
        worker = sanitize(bar.worker)
        label = worker if worker != previous else ""
        previous = worker
        out.append(f'<text x="{_PAD}" y="{y + 15}">{escape(label)}</text>')
        out.append(
            f'<text x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(_cut(sanitize(bar.name), 24))}</text>"
        )
        left, right = x(bar.start), max(x(bar.end), x(bar.start) + 1.0)
        stroke = ' stroke="#000" stroke-width="2"' if bar.critical else ""
        critical = ' data-critical="true"' if bar.critical else ""
        tip = (
            f"{sanitize(bar.name)} [{sanitize(bar.agent)}] on {worker}: {bar.status}, "
            f"{seconds(bar.start)}-{seconds(bar.end)}"
            + (" (critical path)" if bar.critical else "")
        )
        out.append(
            f'<rect x="{left:.1f}" y="{y + 3}" width="{right - left:.1f}" height="{_ROW - 6}" '
            f'fill="{_FILL.get(bar.status, "#9e9e9e")}"{stroke} '
            f'data-check="{escape(sanitize(bar.name))}" data-status="{bar.status}"'
            f"{critical}>"
            f"<title>{escape(tip)}</title></rect>"
        )
    y = top + rows * _ROW + _ROW
    if timeline.not_run:
        listed = ", ".join(f"{sanitize(n)} ({s})" for n, s in timeline.not_run)
        out.append(f'<text x="{_PAD}" y="{y}">not run: {escape(listed)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_html(timeline: Timeline, title: str = "parex timeline") -> str:
    """An HTML page holding the SVG inline and a table of the bars."""
    rows = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{escape(cell)}</td>"
            for cell in (
                sanitize(b.worker),
                sanitize(b.name),
                sanitize(b.agent),
                b.status,
                seconds(b.start),
                seconds(b.end),
                "yes" if b.critical else "",
            )
        )
        + "</tr>"
        for b in timeline.bars
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}</style>\n"
        "</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n"
        f"{render_svg(timeline)}"
        "<table>\n<tr><th>worker</th><th>check</th><th>agent</th><th>status</th>"
        "<th>start</th><th>end</th><th>critical path</th></tr>\n"
        f"{rows}\n</table>\n</body>\n</html>\n"
    )
