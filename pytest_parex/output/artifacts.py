"""What the gate leaves behind once it is decided (controller or in-process only):

* ``--parex-json PATH``: the JSON report (written atomically, also when the gate failed or was
  interrupted);
* ``$GITHUB_STEP_SUMMARY``: a Markdown table appended to it;
* ``--parex-timeline[=PATH]``: text bars after the summary, or an SVG / HTML file;
* ``--parex-show-output``: every check's output block (tail and log path) after the run, as
  collapsed groups on GitHub Actions;
* on GitHub Actions, one ``::error`` annotation per failed check (``file=``/``line=`` for
  review issues).

Files are written from ``pytest_parex_gate_finished`` (called from ``pytest_sessionfinish``),
so a run that ends in a failure or a Ctrl-C still leaves them; the terminal sections come from
``pytest_terminal_summary``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_parex import __version__
from pytest_parex.files import write_atomic
from pytest_parex.output import github, jsonreport, timeline
from pytest_parex.output.summary import failure_text
from pytest_parex.output.text import rel, sanitize
from pytest_parex.results import GateResult
from pytest_parex.state import GATE_RUN


@dataclass(frozen=True)
class Options:
    json: Path | None = None
    timeline_text: bool = False
    timeline_file: Path | None = None
    show_output: bool = False
    github: bool = False
    step_summary: Path | None = None
    workspace: Path | None = None

    @property
    def wanted(self) -> bool:
        return bool(
            self.json
            or self.timeline_text
            or self.timeline_file
            or self.show_output
            or self.github
            or self.step_summary
        )


def options(config: pytest.Config, environ: Any = os.environ) -> Options:
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

    def _needs(self) -> dict[str, tuple[str, ...]]:
        return {c.name: c.needs for c in self.config.stash[GATE_RUN].checks.checks}

    def _write(self, what: str, path: Path, text: str) -> None:
        try:
            write_atomic(path, text)
        except OSError as exc:
            self.problems.append(f"parex: could not write the {what} to {path}: {exc.strerror}")
        else:
            self.written.append(f"parex: {what}: {rel(str(path), self.config.rootpath)}")

    @pytest.hookimpl
    def pytest_parex_gate_finished(self, config: pytest.Config, gate: GateResult) -> None:
        run = config.stash[GATE_RUN]
        root = config.rootpath
        self.gate = gate
        self.timeline = timeline.build(gate, run.started, self._needs())
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
        if self.opts.timeline_file is not None:
            target = self.opts.timeline_file
            if target.suffix.lower() == ".svg":
                text = timeline.render_svg(self.timeline)
            else:
                text = timeline.render_html(self.timeline, f"parex timeline: {gate.headline}")
            self._write("timeline", target, text)
        if self.opts.step_summary is not None:
            try:
                with open(self.opts.step_summary, "a", encoding="utf-8") as fh:
                    fh.write(github.step_summary(gate, root))
            except OSError as exc:
                self.problems.append(
                    f"parex: could not append to GITHUB_STEP_SUMMARY "
                    f"({self.opts.step_summary}): {exc.strerror}"
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
            for line in github.annotation_lines(
                self.gate, self.config.rootpath, self.opts.workspace
            ):
                tr.write_line(line)


def register(config: pytest.Config) -> Outputs | None:
    opts = options(config)
    if not opts.wanted:
        return None
    plugin = Outputs(config, opts)
    config.pluginmanager.register(plugin, "parex-outputs")
    return plugin
