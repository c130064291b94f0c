"""GitHub Actions (pure, but for the job's annotation count): workflow commands for groups and
annotations, ranked and capped to what GitHub shows.

GitHub shows at most 10 error, 10 warning and 10 notice annotations per step and 50 per job;
the rest are dropped without a word, in the order they were printed. So the gate ranks them --
one per failed check first (its own failure line), then findings on lines the pull request
changed, then errors before warnings, then by file -- emits what fits
(:class:`~pytest_parex.config.AnnotationLimits`), and closes with one notice saying how many
were left out and where they all are. The job's count is kept in ``$RUNNER_TEMP`` (emptied by
the runner for every job), so a second gate in the same job spends what the first left.

Every piece of check data is escaped by GitHub's rules (``%``, CR and LF in messages; also ``:``
and ``,`` in properties) after control characters are shown escaped, so a check's output can
never inject a workflow command of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_parex.config import AnnotationLimits
from pytest_parex.files import try_write_atomic
from pytest_parex.findings import Finding, describe_counts, inside
from pytest_parex.output.text import detail_of, rel, sanitize
from pytest_parex.repo import Changes
from pytest_parex.results import BAD, CheckResult, GateResult

ANNOTATION_TAIL_LINES = 10
LEVELS = {"error": "error", "warning": "warning", "note": "notice"}
"""A finding's level -> the annotation command."""
ORDER = ("error", "warning", "notice")


def active(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str = "", **properties: object) -> str:
    """``::name key=value,...::message``, with ``None`` properties left out."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def group(title: str, body: str) -> str:
    """``body`` as a collapsed group of the log. A line of ``body`` that looks like a workflow
    command is neutralised, or a check could close the group or annotate the run."""
    lines = [f" {line}" if line.startswith("::") else line for line in sanitize(body).splitlines()]
    return "\n".join([command("group", sanitize(title)), *lines, "::endgroup::"]) + "\n"


@dataclass(frozen=True)
class Annotation:
    """One annotation, before it is a workflow command."""

    level: str
    """``error``, ``warning`` or ``notice``."""
    message: str
    title: str
    file: str | None = None
    line: int | None = None
    end_line: int | None = None
    col: int | None = None
    end_col: int | None = None
    failure: bool = False
    """A failed check's own line (ranked first)."""
    changed: bool = False
    """On a line the pull request changed (ranked next)."""

    def command(self) -> str:
        return command(
            self.level,
            self.message,
            file=self.file,
            line=self.line,
            endLine=self.end_line,
            col=self.col,
            endColumn=self.end_col,
            title=self.title,
        )

    @property
    def rank(self) -> tuple[int, int, str, int, int]:
        group = 0 if self.failure else 1 if self.changed else 2
        return (group, ORDER.index(self.level), self.file or "", self.line or 0, self.col or 0)


def check_annotations(gate: GateResult, root: Path) -> list[Annotation]:
    """One per failed check (a warning when it is non-blocking): its failure line, what its
    kind made of the output (or the output's tail) and its log."""
    out = []
    for result in gate.results:
        if result.status not in BAD:
            continue
        name = sanitize(result.name)
        head = f"{name} {result.status}"
        why = detail_of(result)
        if why:
            head += f": {why}"
        # What the kind made of the output (a review's first issues) says more than the tail.
        found = result.summary.rstrip("\n").splitlines()[:ANNOTATION_TAIL_LINES]
        tail = found or result.tail.rstrip("\n").splitlines()[-ANNOTATION_TAIL_LINES:]
        lines = [sanitize(head), *(sanitize(line) for line in tail)]
        if result.log_path:
            lines.append(f"full log: {rel(result.log_path, root)}")
        level = "error" if result.blocking else "warning"
        out.append(Annotation(level, "\n".join(lines), f"parex: {name}", failure=True))
    return out


def _span(finding: Finding) -> tuple[int | None, int | None, int | None, int | None]:
    """Where the annotation points: line, end line, column, end column. GitHub refuses
    columns on a span over several lines: such a span keeps its lines only."""
    if finding.line is None:
        return None, None, None, None
    if finding.end_line is not None and finding.end_line != finding.line:
        return finding.line, finding.end_line, None, None
    end_col = None
    if finding.column is not None and finding.end_column is not None:
        end_col = max(finding.column, finding.end_column - 1)  # GitHub's end is inclusive
    return finding.line, None, finding.column, end_col


def finding_annotations(
    findings: Iterable[Finding],
    results: Mapping[str, CheckResult],
    changes: Changes | None = None,
) -> list[Annotation]:
    """One per finding (paths relative to the workspace). An ``error`` only when its check
    failed and blocks the gate: the findings of a check that passed (a tool that reports and
    exits 0, a replayed pass) or does not block are warnings."""
    out = []
    for finding in findings:
        result = results.get(finding.check)
        failing = result is not None and result.bad and result.blocking
        level = LEVELS.get(finding.level, "error")
        if level == "error" and not failing:
            level = "warning"
        rule = sanitize(finding.rule)
        title = f"parex: {sanitize(finding.check)}" + (f" ({rule})" if rule else "")
        message = sanitize(finding.message)
        if finding.path and inside(finding.path):
            line, end_line, col, end_col = _span(finding)
            changed = changes is not None and changes.touches(
                finding.path, finding.line, finding.end_line
            )
            out.append(
                Annotation(
                    level,
                    message,
                    title,
                    sanitize(finding.path),
                    line,
                    end_line,
                    col,
                    end_col,
                    changed=changed,
                )
            )
        else:  # no file in the workspace to point at: the location leads the message
            where = sanitize(finding.location)
            out.append(Annotation(level, f"{where}: {message}" if where else message, title))
    return out


@dataclass(frozen=True)
class Selection:
    """What a step emits: the annotations that fit, in rank order, and the closing notice."""

    shown: tuple[Annotation, ...]
    left_out: tuple[Annotation, ...]
    notice: Annotation | None

    @property
    def emitted(self) -> int:
        return len(self.shown) + (self.notice is not None)

    def lines(self) -> list[str]:
        return [a.command() for a in self.shown] + ([self.notice.command()] if self.notice else [])


def _fit(
    ranked: Sequence[Annotation], per_level: Mapping[str, int], total: int
) -> tuple[list[Annotation], list[Annotation]]:
    used = dict.fromkeys(ORDER, 0)
    shown: list[Annotation] = []
    left: list[Annotation] = []
    for annotation in ranked:
        if len(shown) < total and used[annotation.level] < per_level[annotation.level]:
            used[annotation.level] += 1
            shown.append(annotation)
        else:
            left.append(annotation)
    return shown, left


def select(
    annotations: Iterable[Annotation],
    limits: AnnotationLimits,
    *,
    used: int = 0,
    where: str = "",
) -> Selection:
    """The annotations within ``limits`` (``used`` of the job's already spent by earlier
    steps), best ranked first, and -- when some are left out -- one notice that says how many
    and ``where`` they all are (it takes a notice's and a job's slot of its own)."""
    ranked = sorted(annotations, key=lambda a: a.rank)
    per_level = {"error": limits.errors, "warning": limits.warnings, "notice": limits.notices}
    total = max(0, limits.job - used)
    shown, left = _fit(ranked, per_level, total)
    if not left or total == 0 or limits.notices == 0:
        return Selection(tuple(shown), tuple(left), None)
    per_level["notice"] -= 1
    shown, left = _fit(ranked, per_level, total - 1)
    return Selection(tuple(shown), tuple(left), _closing(left, limits, where))


def _closing(left: Sequence[Annotation], limits: AnnotationLimits, where: str) -> Annotation:
    failed = [a for a in left if a.failure]
    findings = [a for a in left if not a.failure]
    parts = []
    if findings:
        levels = describe_counts({lv: sum(a.level == lv for a in findings) for lv in ORDER})
        parts.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''} ({levels})")
    if failed:
        parts.append(f"{len(failed)} failed check{'s' if len(failed) != 1 else ''}")
    text = (
        f"{' and '.join(parts)} not annotated: GitHub shows at most {limits.errors} errors, "
        f"{limits.warnings} warnings and {limits.notices} notices per step and "
        f"{limits.job} in a job"
    )
    if where:
        text += f"; all of them are in {where}"
    return Annotation("notice", text, "parex: more findings")


# --------------------------------------------------------------------------------------------
# the job's count, across its steps

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def job_state(environ: Mapping[str, str]) -> Path | None:
    """The file that counts this job's annotations (in ``$RUNNER_TEMP``, which the runner
    empties for every job); None outside a runner."""
    temp = environ.get("RUNNER_TEMP")
    if not temp:
        return None
    names = ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB")
    key = "-".join(environ.get(n, "") for n in names)
    return Path(temp) / f"parex-annotations-{_UNSAFE.sub('_', key)}.json"


def job_used(path: Path | None) -> int:
    """Annotations earlier gates of this job emitted (0 when unknown)."""
    if path is None:
        return 0
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    used = data.get("used") if isinstance(data, dict) else None
    return used if isinstance(used, int) and not isinstance(used, bool) and used > 0 else 0


def record_job_used(path: Path | None, used: int) -> str | None:
    """Remember ``used`` for the job's next steps; a one-line warning when it cannot."""
    if path is None:
        return None
    return try_write_atomic(path, json.dumps({"used": used}) + "\n")
