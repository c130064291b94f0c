"""What the gate leaves behind once it is decided (controller or in-process only):

* ``--parex-json PATH``: the JSON report (written atomically, also when the gate failed or was
  interrupted);
* ``--parex-sarif PATH`` / ``--parex-codequality PATH``: every finding as a SARIF 2.1.0 log /
  a GitLab Code Quality report;
* ``$GITHUB_STEP_SUMMARY``: the gate in Markdown (table, then findings and failures per
  check), shortened to fit GitHub's limit; the whole of it in ``.parex/report.md``;
* ``--parex-timeline[=PATH]``: text bars after the summary, or an SVG / HTML file;
* ``--parex-show-output``: every check's output block (tail and log path) after the run, as
  collapsed groups on GitHub Actions;
* on GitHub Actions, annotations: one per failed check, one per finding, ranked and capped
  to what GitHub shows, and a notice for the rest.

Files are written from ``pytest_parex_gate_finished`` (called from ``pytest_sessionfinish``),
so a run that ends in a failure or a Ctrl-C still leaves them; the terminal sections come from
``pytest_terminal_summary``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_parex import __version__, findings, repo
from pytest_parex.files import write_atomic
from pytest_parex.findings import Finding
from pytest_parex.output import codequality, github, jsonreport, sarif, stepsummary, timeline
from pytest_parex.output.summary import failure_text
from pytest_parex.output.text import rel, sanitize
from pytest_parex.results import GateResult
from pytest_parex.state import GATE_RUN

FULL_REPORT = ".parex/report.md"
"""The whole Markdown report (the step summary may be shortened), relative to the rootdir."""


@dataclass(frozen=True)
class Options:
    json: Path | None = None
    timeline_text: bool = False
    timeline_file: Path | None = None
    show_output: bool = False
    github: bool = False
    step_summary: Path | None = None
    workspace: Path | None = None
    sarif: Path | None = None
    codequality: Path | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    """The CI's variables (base branch, repository, job) as the run saw them."""

    @property
    def wanted(self) -> bool:
        return bool(
            self.json
            or self.timeline_text
            or self.timeline_file
            or self.show_output
            or self.github
            or self.step_summary
            or self.sarif
            or self.codequality
        )


def options(config: pytest.Config, environ: Mapping[str, str] = os.environ) -> Options:
    base = Path(config.invocation_params.dir)

    def path(value: str | None) -> Path | None:
        return base / Path(value).expanduser() if value else None

    tl = config.getoption("parex_timeline")
    summary = environ.get("GITHUB_STEP_SUMMARY")
    workspace = environ.get("GITHUB_WORKSPACE")
    return Options(
        json=path(config.getoption("parex_json")),
        timeline_text=tl == "",
        timeline_file=path(tl) if tl else None,
        show_output=bool(config.getoption("parex_show_output")),
        github=github.active(environ),
        step_summary=Path(summary) if summary else None,
        workspace=Path(workspace) if workspace else None,
        sarif=path(config.getoption("parex_sarif")),
        codequality=path(config.getoption("parex_codequality")),
        environ=dict(environ),
    )


class Outputs:
    """Writes the files and the extra terminal sections of one gate run."""

    def __init__(self, config: pytest.Config, opts: Options) -> None:
        self.config = config
        self.opts = opts
        self.gate: GateResult | None = None
        self.timeline: timeline.Timeline | None = None
        self.written: list[str] = []
        self.problems: list[str] = []
        self.found: list[Finding] = []
        """The gate's findings, paths relative to the repository."""
        self.places: list[str] = []
        """Where every finding can be read (for the annotations' closing notice)."""
        self.repository = config.rootpath
        """Where report paths start (the CI checkout, git's top level)."""

    def _needs(self) -> dict[str, tuple[str, ...]]:
        return {c.name: c.needs for c in self.config.stash[GATE_RUN].checks.checks}

    def _write(
        self, what: str, path: Path, text: str, note: str = "", *, findings: bool = True
    ) -> bool:
        """Write a report; one that holds every finding is named in the closing notice."""
        try:
            write_atomic(path, text)
        except OSError as exc:
            self.problems.append(f"parex: could not write the {what} to {path}: {exc.strerror}")
            return False
        shown = rel(str(path), self.config.rootpath)
        self.written.append(f"parex: {what}: {shown}" + (f" ({note})" if note else ""))
        if findings:
            self.places.append(shown)
        return True

    @pytest.hookimpl
    def pytest_parex_gate_finished(self, config: pytest.Config, gate: GateResult) -> None:
        run = config.stash[GATE_RUN]
        root = config.rootpath
        self.gate = gate
        self.timeline = timeline.build(gate, run.started, self._needs())
        opts = self.opts
        repository = root
        if opts.sarif or opts.codequality or opts.github or opts.step_summary:
            repository = self.repository = repo.root(root, opts.environ)
        self.found = findings.relocate(findings.of_gate(gate), root, repository)
        if opts.step_summary is not None:
            self._step_summary(gate, opts.step_summary)
        if self.opts.json is not None:
            doc = jsonreport.document(
                gate,
                origin=run.started,
                root=root,
                config_path=run.config_path,
                needs=self._needs(),
                version=__version__,
            )
            self._write("JSON report", self.opts.json, jsonreport.dumps(doc))
        if opts.sarif is not None:
            log = sarif.document(gate, self.found, repository, version=__version__)
            tools = len(log["runs"])
            note = f"{len(self.found)} results from {tools} tool{'s' if tools != 1 else ''}"
            self._write("SARIF log", opts.sarif, sarif.dumps(log), note)
        if opts.codequality is not None:
            prints = findings.fingerprints(self.found, findings.file_lines(repository))
            report, left = codequality.document(self.found, prints)
            note = f"{len(report)} issues"
            if left:
                note += f"; {left} finding{'s' if left != 1 else ''} without a file in the "
                note += "repository left out"
            self._write("Code Quality report", opts.codequality, codequality.dumps(report), note)
        if self.opts.timeline_file is not None:
            target = self.opts.timeline_file
            if target.suffix.lower() == ".svg":
                text = timeline.render_svg(self.timeline)
            else:
                text = timeline.render_html(self.timeline, f"parex timeline: {gate.headline}")
            self._write("timeline", target, text, findings=False)

    def _step_summary(self, gate: GateResult, target: Path) -> None:
        """The Markdown report: whole in :data:`FULL_REPORT`, and appended to the step summary
        within what GitHub takes (what the step wrote there before counts)."""
        root = self.config.rootpath
        links = stepsummary.Links.from_environ(self.opts.environ)
        head, parts = stepsummary.sections(gate, root, self.found, links)
        full = root / FULL_REPORT
        wrote_full = self._write("full report", full, stepsummary.render(head, parts))
        try:
            before = target.stat().st_size
        except OSError:
            before = 0
        shown = rel(str(full), root) if wrote_full else "in the checks' logs"
        budget = stepsummary.LIMIT - before
        if budget < stepsummary.MIN_BUDGET:  # the step filled it: appending would lose it all
            self.problems.append(
                f"parex: GITHUB_STEP_SUMMARY already holds {before:,} bytes; nothing appended "
                f"(the report is {shown})"
            )
            return
        text, cut = stepsummary.fit(head, parts, budget, stepsummary.md_cell(shown))
        try:
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            self.problems.append(
                f"parex: could not append to GITHUB_STEP_SUMMARY ({target}): {exc.strerror}"
            )
            return
        self.places.insert(0, "the step summary" + (" (shortened)" if cut else ""))
        if cut:
            self.written.append(
                f"parex: the step summary was shortened to {len(text.encode()):,} bytes "
                f"(GitHub drops one over 1 MiB); the full report is {shown}"
            )

    # Inside pytest's own summary wrapper (trylast): after FAILURES, the output blocks; then
    # the parex table (a plain implementation); then the timeline and the annotations, before
    # pytest's short test summary.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Generator[None, None, None]:
        tr = terminalreporter
        if self.gate is not None and self.opts.show_output:
            self._show_output(tr, self.gate)
        try:
            return (yield)
        finally:
            self._after(tr)

    def _show_output(self, tr: Any, gate: GateResult) -> None:
        root = self.config.rootpath
        tr.write_sep("=", "parex output")
        for result in gate.results:
            if result.start is None and not result.tail:
                continue
            title = f"{sanitize(result.name)} ({result.status})"
            body = failure_text(result, root)
            if self.opts.github:
                tr.write(github.group(f"parex: {title}", body))
            else:
                tr.write_sep("-", title)
                tr.write_line(body)

    def _after(self, tr: Any) -> None:
        verbose = self.config.get_verbosity()
        if self.timeline is not None and self.opts.timeline_text:
            tr.write_sep("=", "parex timeline")
            tr.write(timeline.render_text(self.timeline, shutil.get_terminal_size().columns))
        for line in self.problems:
            tr.write_line(line, red=True, bold=True)
        if verbose >= 0:
            for line in self.written:
                tr.write_sep("-", line)
        if self.gate is not None and self.opts.github:
            for line in self._annotations(self.gate):
                tr.write_line(line)

    def _annotations(self, gate: GateResult) -> list[str]:
        """The annotations of this step, within the step's and the job's limits; a plain line
        before them says how they were ranked when the pull request's changes are unknown."""
        environ = self.opts.environ
        lines: list[str] = []
        changes = None
        base_ref = environ.get("GITHUB_BASE_REF", "")
        if base_ref:
            changes, why = repo.changes(self.repository, base_ref)
            if changes is None:
                lines.append(f"parex: findings on changed lines not ranked first: {why}")
        results = {r.name: r for r in gate.results}
        candidates = github.check_annotations(gate, self.config.rootpath)
        candidates += github.finding_annotations(self.found, results, changes)
        state = github.job_state(environ)
        used = github.job_used(state)
        where = ", ".join(self.places) or f"the checks' logs ({self._log_dir()})"
        limits = self.config.stash[GATE_RUN].config.annotations
        chosen = github.select(candidates, limits, used=used, where=where)
        problem = github.record_job_used(state, used + chosen.emitted)
        if problem:
            lines.append(problem)
        return lines + chosen.lines()

    def _log_dir(self) -> str:
        return self.config.stash[GATE_RUN].config.log_dir


def register(config: pytest.Config) -> Outputs | None:
    opts = options(config)
    if not opts.wanted:
        return None
    plugin = Outputs(config, opts)
    config.pluginmanager.register(plugin, "parex-outputs")
    return plugin
