"""The gate as Markdown (pure): the verdict, the table of checks, the totals, then a section
per check with findings (a table of them) or a failure (its report) -- for
``$GITHUB_STEP_SUMMARY``, and whole as the full report file.

GitHub takes at most 1 MiB of summary per step and drops a larger one without a word, also
just below that size (actions/runner#4337): :func:`fit` shortens the check sections to a
byte budget, fairly (a small section is kept whole, the big ones share what is left), each
cut section saying how much it left out and where the full report is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pytest_parex.findings import Finding, counts, describe_counts, inside
from pytest_parex.output.summary import failure_text, totals_line
from pytest_parex.output.text import detail_of, rel, sanitize, seconds
from pytest_parex.results import CheckResult, GateResult, Status

LIMIT = 1_000_000
"""Bytes a step's summary may hold in all: GitHub's limit is 1 MiB (1,048,576), and a summary
just below it was seen dropped (actions/runner#4337), so the gate keeps a margin."""
MIN_BUDGET = 1024
"""Below this many bytes left, nothing is appended (the step filled its summary itself)."""
SECTION_FLOOR = 2048
"""A section is never cut below this many bytes while the table of checks can give way."""


def md_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: one line, no column breaks, no HTML."""
    text = sanitize(text.replace("\r\n", "\n"))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


@dataclass(frozen=True)
class Links:
    """Where a file's line is on GitHub: ``{server}/{repository}/blob/{sha}/{path}#L{line}``."""

    server: str
    repository: str
    sha: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Links | None:
        names = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA")
        values = [environ.get(n, "") for n in names]
        return cls(*values) if all(values) else None

    def to(self, path: str, line: int | None) -> str:
        url = f"{self.server.rstrip('/')}/{self.repository}/blob/{self.sha}/{quote(path)}"
        return f"{url}#L{line}" if line is not None else url


@dataclass
class Section:
    """A part of the summary that may be shortened: fixed lines around rows that can go."""

    head: list[str]
    rows: list[str]
    foot: list[str] = field(default_factory=list)
    what: str = "lines"
    """What a row is, for the note of a cut section ("findings", "lines of output")."""
    keep_end: bool = False
    """Cut from the start (an output's tail matters most)."""

    def text(self, rows: Sequence[str] | None = None) -> str:
        body = self.rows if rows is None else rows
        return "\n".join([*self.head, *body, *self.foot]) + "\n"

    @property
    def size(self) -> int:
        return len(self.text().encode())

    def cut(self, budget: int, note: str) -> str:
        """This section in at most ``budget`` bytes, with ``note`` after it when rows went
        (at least its head and the note, whatever the budget)."""
        if self.size <= budget:
            return self.text()
        sizes = [len(row.encode()) + 1 for row in self.rows]
        fixed = len(self.text([]).encode())
        room = budget - fixed - len(note.encode()) - 4
        kept = 0
        order = reversed(sizes) if self.keep_end else iter(sizes)
        for size in order:
            if room < size:
                break
            room -= size
            kept += 1
        dropped = len(self.rows) - kept
        rows = self.rows[len(self.rows) - kept :] if self.keep_end else self.rows[:kept]
        said = note.replace("{n}", str(dropped)).replace("{what}", self.what)
        return self.text(rows) + "\n" + said + "\n"


def _head(gate: GateResult, root: Path) -> Section:
    mark = Status.PASSED if gate.verdict else Status.FAILED
    rows = []
    for r in gate.results:
        detail = detail_of(r)
        if r.bad and r.log_path:
            detail = f"{detail} (log: {rel(r.log_path, root)})" if detail else rel(r.log_path, root)
        if not r.blocking:
            detail = f"{detail} [non-blocking]" if detail else "[non-blocking]"
        duration = seconds(r.duration) if r.measured else "-"
        cells = (r.name, r.agent, r.label, duration, detail)
        rows.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return Section(
        [
            f"### parex: {md_cell(gate.headline)}",
            "",
            "| check | agent | status | duration | detail |",
            "| --- | --- | --- | ---: | --- |",
        ],
        rows,
        ["", md_cell(totals_line(gate)) + f"; verdict: **{mark}**"],
        what="checks",
    )


def _location(finding: Finding, links: Links | None) -> str:
    where = md_cell(finding.location) or "-"
    if links is not None and inside(finding.path):
        return f"[{where}]({links.to(finding.path, finding.line)})"
    return where


def _findings_section(
    result: CheckResult, found: Sequence[Finding], links: Links | None
) -> Section:
    head = [
        "",
        f"#### {md_cell(result.name)} ({result.label}): "
        f"{len(found)} finding{'s' if len(found) != 1 else ''} "
        f"({describe_counts(counts(found))})",
        "",
        "| where | level | rule | message |",
        "| --- | --- | --- | --- |",
    ]
    rows = []
    for f in found:
        rule = md_cell(f.rule) or "-"
        if f.url and f.rule:
            rule = f"[{rule}]({f.url})"
        rows.append(f"| {_location(f, links)} | {f.level} | {rule} | {md_cell(f.message)} |")
    return Section(head, rows, what="findings")


def _failure_section(result: CheckResult, root: Path) -> Section:
    body = failure_text(result, root)
    fence = _fence(body)
    return Section(
        [
            "",
            f"<details><summary>{md_cell(result.name)} {result.status}: output</summary>",
            "",
            fence + "text",
        ],
        body.splitlines(),
        [fence, "", "</details>"],
        what="lines of output",
        keep_end=True,
    )


def sections(
    gate: GateResult, root: Path, found: Sequence[Finding], links: Links | None = None
) -> tuple[Section, list[Section]]:
    """The head (verdict, table, totals) and a section per check worth one: its findings, or
    the report of a failed check that has none."""
    by_check: dict[str, list[Finding]] = {}
    for finding in found:
        by_check.setdefault(finding.check, []).append(finding)
    out = []
    for result in gate.results:
        mine = by_check.get(result.name, [])
        if mine:
            out.append(_findings_section(result, mine, links))
        elif result.bad:
            out.append(_failure_section(result, root))
    return _head(gate, root), out


def render(head: Section, parts: Sequence[Section]) -> str:
    """Everything, uncut: the full report."""
    return head.text() + "".join(part.text() for part in parts)


def _shares(sizes: Sequence[int], budget: int) -> list[int]:
    """Water-filling: sections smaller than an equal share keep their size, the rest split
    what is left equally."""
    shares = [0] * len(sizes)
    left = budget
    for n, index in enumerate(sorted(range(len(sizes)), key=lambda i: sizes[i])):
        share = max(0, left) // (len(sizes) - n)
        shares[index] = min(sizes[index], share)
        left -= shares[index]
    return shares


def fit(head: Section, parts: Sequence[Section], budget: int, full: str) -> tuple[str, bool]:
    """The summary in at most ``budget`` bytes, and whether it was shortened; a cut part says
    how much it left out and that the full report is ``full``."""
    whole = render(head, parts)
    if len(whole.encode()) <= budget:
        return whole, False
    note = "*... {n} more {what}: the full report is " + full + "*"
    floors = sum(min(part.size, SECTION_FLOOR) for part in parts)
    head_room = min(head.size, max(budget // 2, budget - floors))
    text = head.cut(head_room, note)
    left = budget - len(text.encode())
    for part, share in zip(parts, _shares([p.size for p in parts], left), strict=True):
        text += part.cut(share, note)
    data = text.encode()
    if len(data) > budget:  # too many sections for even their heads: cut at a line
        last = f"\n*... cut here: the full report is {full}*\n"
        keep = data[: max(0, budget - len(last.encode()))]
        text = keep[: keep.rfind(b"\n") + 1].decode("utf-8", "ignore") + last
    return text, True
