"""Memory leak detection for a child pytest: ``pytest -p pytest_parex.child.leaks --parex-leaks``.

Each test function is called once as usual (the warm-up: it fills caches,
imports modules, interns strings), then N more times while ``tracemalloc``
traces allocations. After the warm-up and after every extra call the garbage
collector runs and the memory still held by allocations made since the
warm-up is measured. A test leaks when that grows in (nearly) every call and
the mean growth per call exceeds the threshold; memory retained once (an
``lru_cache`` filled by the warm-up) therefore never counts.

The extra calls reuse the test's fixture values, so a test that appends to a
function-scoped fixture's list grows too: it would in a loop as well.

This module is loaded on its own in child processes, so it imports only the
standard library and pytest.
"""

from __future__ import annotations

import argparse
import fnmatch
import gc
import itertools
import json
import os
import re
import tracemalloc
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["LeakChecker", "LeakResult", "format_size", "parse_size"]

DEFAULT_ITERATIONS = 5
DEFAULT_THRESHOLD = 64 * 1024
TOP_SITES = 5
TOP_TYPES = 10
WORKER_OUTPUT_KEY = "parex_leaks"

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^\s*(?P<number>[0-9]*\.?[0-9]+)\s*(?P<unit>[a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Parse a byte size: ``2048``, ``10KB`` (SI, 1000), ``64 KiB`` (binary, 1024), ``1.5 MiB``.

    Raises:
        argparse.ArgumentTypeError: so that argparse reports a usage error.
    """
    match = _SIZE.match(text)
    factor = _UNITS.get(match["unit"].lower()) if match else None
    if match is None or factor is None:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: expected a number of bytes with an optional unit,"
            " e.g. 2048, 10KB, 64 KiB, 1 MiB"
        )
    return round(float(match["number"]) * factor)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"invalid iteration count {text!r}: expected an integer >= 1"
        )
    return value


def format_size(size: float, *, sign: bool = False) -> str:
    """``102400`` -> ``100 KiB``, ``100049`` -> ``97.7 KiB``; with *sign*, ``+100 KiB``."""
    prefix = ("+" if size >= 0 else "-") if sign else ("-" if size < 0 else "")
    value, unit = abs(size), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    number = f"{value:.0f}" if unit == "B" else f"{value:.1f}".removesuffix(".0")
    return f"{prefix}{number} {unit}"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--parex-leaks*`` options."""
    group = parser.getgroup("parex-leaks", "memory leak detection (pytest-parex)")
    group.addoption(
        "--parex-leaks",
        action="store_true",
        default=False,
        help="Call every test function repeatedly and fail the ones whose memory keeps growing.",
    )
    group.addoption(
        "--parex-leaks-iterations",
        type=_positive_int,
        default=DEFAULT_ITERATIONS,
        metavar="N",
        help=f"Measured calls after the warm-up call (default {DEFAULT_ITERATIONS}).",
    )
    group.addoption(
        "--parex-leaks-threshold",
        type=parse_size,
        default=DEFAULT_THRESHOLD,
        metavar="SIZE",
        help="Mean growth per call above which a test leaks, e.g. 64 KiB, 1 MiB, 10KB, 2048"
        " (default 64 KiB).",
    )
    group.addoption(
        "--parex-leaks-report",
        default=None,
        metavar="PATH",
        help="Write the per-test measurements as JSON to PATH.",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the checker only when enabled, so a disabled run pays nothing."""
    if config.getoption("parex_leaks"):
        checker = LeakChecker(
            iterations=config.getoption("parex_leaks_iterations"),
            threshold=config.getoption("parex_leaks_threshold"),
            report=config.getoption("parex_leaks_report"),
            rootpath=config.rootpath,
            invocation_dir=config.invocation_params.dir,
        )
        config.pluginmanager.register(checker, "parex-leaks-checker")


@dataclass
class LeakResult:
    """The measurements of one test, as written to the JSON report."""

    nodeid: str
    leaking: bool
    growth_per_iteration: int  # mean, bytes
    iterations: int
    growth: list[int] = field(default_factory=list)  # bytes, one per iteration
    top_sites: list[str] = field(default_factory=list)  # "file:line: +size"
    grown_types: dict[str, int] = field(default_factory=dict)  # type -> objects added
    error: str | None = None  # set when an extra call raised


class LeakChecker:
    """The plugin object registered when ``--parex-leaks`` is given."""

    def __init__(
        self,
        *,
        iterations: int,
        threshold: int,
        report: str | None,
        rootpath: Path,
        invocation_dir: Path,
    ) -> None:
        self.iterations = iterations
        self.threshold = threshold
        self.report = invocation_dir / report if report else None
        self.rootpath = rootpath
        self.results: list[LeakResult] = []
        # Our own bookkeeping (snapshots, type counts) must not look like a leak.
        self._filters = [
            tracemalloc.Filter(False, __file__),
            tracemalloc.Filter(False, tracemalloc.__file__),
        ]
        # Filters match with fnmatch, which compiles and caches each pattern on
        # first use: do that now, untraced, or the cache shows up as growth.
        for trace_filter in self._filters:
            fnmatch.fnmatch(__file__, trace_filter.filename_pattern)

    # trylast: the innermost wrapper, so that output capture, log capture and
    # warning recording of the other plugins also cover the extra calls.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        yield  # the warm-up: pytest's own call; its failure ends the test as usual
        if not isinstance(item, pytest.Function):
            return  # doctests and custom items cannot be re-run safely
        result = self._measure(item)
        self.results.append(result)
        if result.leaking:
            pytest.fail(self._failure(result), pytrace=False)

    def _measure(self, item: pytest.Function) -> LeakResult:
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start(1)  # one frame: the allocating line is what we report
        try:
            baseline_types, first = self._point()
            sizes = [_total(first)]
            previous_types, last = baseline_types, first
            grew: dict[type, int] = {}  # type -> iterations in which its count rose
            for _ in range(self.iterations):
                try:
                    item.runtest()
                except BaseException as exc:  # pytest.skip/fail outcomes are BaseException
                    # A test that cannot be called twice is reported, not hidden.
                    error = f"{type(exc).__name__}: {exc}"
                    self.results.append(
                        LeakResult(item.nodeid, False, 0, len(sizes) - 1, error=error)
                    )
                    raise
                # Release the previous snapshot before counting objects: its
                # trace tuples would otherwise grow along with the test's memory.
                last = first
                types, last = self._point()
                sizes.append(_total(last))
                for kind, count in types.items():
                    if count > previous_types.get(kind, 0):
                        grew[kind] = grew.get(kind, 0) + 1
                previous_types = types
            added = {
                kind: count - baseline_types.get(kind, 0) for kind, count in previous_types.items()
            }
            return self._result(item.nodeid, sizes, first, last, grew, added)
        finally:
            if started:
                tracemalloc.stop()

    def _point(self) -> tuple[dict[type, int], tracemalloc.Snapshot]:
        """Collect garbage, then count live objects by type and snapshot the traces."""
        gc.collect()
        # Count before the snapshot exists so that its objects are not counted.
        types = _count_types()
        return types, tracemalloc.take_snapshot().filter_traces(self._filters)

    def _result(
        self,
        nodeid: str,
        sizes: list[int],
        first: tracemalloc.Snapshot,
        last: tracemalloc.Snapshot,
        grew: dict[type, int],
        added: dict[type, int],
    ) -> LeakResult:
        growth = [after - before for before, after in itertools.pairwise(sizes)]
        mean = (sizes[-1] - sizes[0]) / len(growth)
        # "Nearly every": one quiet iteration in five is allowed, because a
        # leak that reuses freed space once in a while is still a leak.
        needed = max(1, len(growth) - len(growth) // 5)
        growing = sum(1 for delta in growth if delta > 0)
        leaking = growing >= needed and mean > self.threshold
        # Types whose count rose as consistently as the memory, with their net gain.
        consistent = {
            _type_name(kind): added[kind]
            for kind, times in grew.items()
            if times >= needed and added.get(kind, 0) > 0
        }
        top_types = sorted(consistent.items(), key=lambda item: (-item[1], item[0]))[:TOP_TYPES]
        return LeakResult(
            nodeid=nodeid,
            leaking=leaking,
            growth_per_iteration=round(mean),
            iterations=len(growth),
            growth=growth,
            top_sites=self._top_sites(first, last) if leaking or mean > 0 else [],
            grown_types=dict(top_types),
        )

    def _top_sites(self, first: tracemalloc.Snapshot, last: tracemalloc.Snapshot) -> list[str]:
        sites = []
        for stat in last.compare_to(first, "lineno"):
            if stat.size_diff <= 0:
                continue
            frame = stat.traceback[0]
            where = f"{self._display(frame.filename)}:{frame.lineno}"
            sites.append(f"{where}: {format_size(stat.size_diff, sign=True)}")
            if len(sites) == TOP_SITES:
                break
        return sites

    def _display(self, filename: str) -> str:
        try:
            return Path(filename).relative_to(self.rootpath).as_posix()
        except ValueError:
            return filename

    def _failure(self, result: LeakResult) -> str:
        lines = [
            f"memory leak: {format_size(result.growth_per_iteration, sign=True)} per iteration"
            f" over {result.iterations} iterations"
            f" (threshold {format_size(self.threshold)})",
            "growth per iteration: " + ", ".join(format_size(g, sign=True) for g in result.growth),
        ]
        if result.top_sites:
            lines.append("top allocation sites:")
            lines += [f"  {site}" for site in result.top_sites]
        if result.grown_types:
            lines.append(
                "objects added: "
                + ", ".join(f"{name} +{n}" for name, n in result.grown_types.items())
            )
        return "\n".join(lines)

    @pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """On the xdist controller: gather what a worker measured."""
        output = getattr(node, "workeroutput", None) or {}
        self.results += [LeakResult(**entry) for entry in output.get(WORKER_OUTPUT_KEY, [])]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            # An xdist worker hands its results to the controller, which writes
            # the one report (workers would overwrite each other's file).
            workeroutput[WORKER_OUTPUT_KEY] = [asdict(result) for result in self.results]
            return
        if self.report is None:
            return
        document = {
            "version": 1,
            "iterations": self.iterations,
            "threshold": self.threshold,
            "summary": {
                "tests_checked": len(self.results),
                "leaking": sum(1 for result in self.results if result.leaking),
            },
            "tests": [asdict(result) for result in self.results],
        }
        self.report.parent.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: the gate reads it once this process has exited.
        tmp = self.report.with_name(f".{self.report.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        leaking = [result.nodeid for result in self.results if result.leaking]
        terminalreporter.write_sep(
            "-", f"parex-leaks: {len(self.results)} tests checked, {len(leaking)} leaking"
        )
        for nodeid in leaking:
            terminalreporter.write_line(f"LEAK {nodeid}")


def _total(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _count_types() -> dict[type, int]:
    # Keyed by type object: building name strings for millions of objects would
    # cost more than the count. Only gc-tracked objects (containers, instances)
    # are seen; leaked bytes or str show up in the allocation sites instead.
    counts: dict[type, int] = {}
    for obj in gc.get_objects():
        kind = type(obj)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _type_name(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
