"""The summary section (pure): the table of checks, the totals, the verdict; and the failure
report of one check. Rendered as aligned plain text, or as a rich table when colour is on."""

from __future__ import annotations

import io
import os
from pathlib import Path

from pytest_parex.output.text import (
    STATUS_STYLE,
    detail_of,
    rel,
    sanitize,
    seconds,
    string_console,
)
from pytest_parex.results import CheckResult, GateResult, Status


def failure_text(result: CheckResult, root: Path) -> str:
    """The failure report of one check: what happened, its output's tail and the log path."""
    head = f"check {result.name} {result.status}"
    if result.detail:
        head += f": {result.detail}"
    elif result.reason:
        head += f": {result.reason}"
    lines = [sanitize(head)]
    if result.attempts > 1:
        lines.append(f"attempts: {result.attempts}")
    if result.summary:
        lines.append(sanitize(result.summary.rstrip("\n")))
    tail = result.tail.rstrip("\n")
    if tail:
        count = tail.count("\n") + 1
        lines.append(f"--- last {count} line{'s' if count != 1 else ''} of output ---")
        lines.append(sanitize(tail))
    elif not result.summary:
        lines.append("(no output)")
    if result.log_path:
        lines.append(f"full log: {rel(result.log_path, root)}")
    return "\n".join(lines)


def _rows(gate: GateResult, root: Path) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for r in gate.results:
        detail = detail_of(r)
        if not r.ok and r.status not in (Status.SKIPPED, Status.CANCELLED) and r.log_path:
            detail = f"{detail} (log: {rel(r.log_path, root)})" if detail else rel(r.log_path, root)
        if r.cached and not r.ok:  # the watch loop keeps it: its inputs did not change
            detail = f"{detail} [not rerun: inputs unchanged]"
        if r.attempts > 1 and "attempt" not in detail:
            detail = f"{detail} [{r.attempts} attempts]"
        if not r.blocking:
            detail = f"{detail} [non-blocking]" if detail else "[non-blocking]"
        duration = seconds(r.duration) if r.measured else "-"
        rows.append((sanitize(r.name), sanitize(r.agent), r.label, duration, sanitize(detail)))
    return rows


SATURATED = 0.75
"""Checks that kept this share of the cores busy on average competed for them."""


def totals_line(gate: GateResult, cores: int | None = None) -> str:
    parts = [
        f"sequential {seconds(gate.sequential)}",
        f"wall {seconds(gate.waited)}",
        f"speedup {gate.speedup:.2f}x"
        # The wall counts pytest's own start-up; the gate's part of it, for the record.
        + (f" (gate {seconds(gate.wall)} of the wall)" if gate.process_wall > gate.wall else ""),
    ]
    if gate.critical_path > 0:
        parts.append(f"critical path {seconds(gate.critical_path)} (bound {gate.bound:.2f}x)")
    if gate.cpu > 0:
        parts.append(f"cpu {seconds(gate.cpu)}" + contention_note(gate, cores))
    if gate.cached:
        parts.append(f"{gate.cached} cached, saved {seconds(gate.saved)}")
    return ", ".join(parts)


def contention_note(gate: GateResult, cores: int | None = None) -> str:
    """When the checks kept every core busy, each one's duration includes time spent waiting
    for a core: their sum overstates one-after-another, and the speedup with it. The cpu
    figure does not (a CPU-bound check alone takes about its cpu time)."""
    cores = cores or os.cpu_count() or 1
    if not gate.parallel or gate.wall <= 0 or gate.cpu < SATURATED * cores * gate.wall:
        return ""
    busy = gate.cpu / gate.wall
    return (
        f" ({cores} core{'s' if cores != 1 else ''} saturated: durations include waiting for a"
        f" core; speedup by cpu time {busy:.2f}x)"
    )


def verdict_line(gate: GateResult) -> str:
    return f"parex: {gate.headline}"


def render_plain(gate: GateResult, root: Path) -> str:
    """Aligned plain text, for terminals without colour and for logs."""
    header = ("check", "agent", "status", "duration", "detail")
    rows = [header, *_rows(gate, root)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    out = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        out.append("  ".join([*cells, row[4]]).rstrip())
    out.extend(gate_notes(gate))
    out.append(totals_line(gate))
    out.append(verdict_line(gate))
    return "\n".join(out) + "\n"


def gate_notes(gate: GateResult) -> list[str]:
    return [sanitize(s) for s in gate.serialised]


def render_rich(gate: GateResult, root: Path, *, width: int, color: bool) -> str:
    """A rich table rendered to a string (pytest's terminal writer owns stdout)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column, justify in (
        ("check", "left"),
        ("agent", "left"),
        ("status", "left"),
        ("duration", "right"),
        ("detail", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, agent, status, duration, detail in _rows(gate, root):
        table.add_row(
            Text(name),
            Text(agent),
            Text(status, style=STATUS_STYLE.get(status, "")),
            Text(duration),
            Text(detail),
        )
    buffer = io.StringIO()
    console = string_console(buffer, width=width, color=color)
    console.print(table)
    for note in gate_notes(gate):
        console.print(Text(note, style="yellow"))
    console.print(Text(totals_line(gate)))
    console.print(Text(verdict_line(gate), style="bold green" if gate.verdict else "bold red"))
    return buffer.getvalue()


def render(gate: GateResult, root: Path, *, width: int = 100, color: bool = False) -> str:
    if color:
        return render_rich(gate, root, width=width, color=True)
    return render_plain(gate, root)
