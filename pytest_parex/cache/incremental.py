"""The result cache as the gate uses it: decide at configure time which checks replay their
last pass (and why each other one runs), replay them, and record new passes once the gate is
decided.

What a check's key holds is :class:`~pytest_parex.cache.key.KeyBuilder`'s: its definition, the
content of its inputs, its tools and interpreter, its environment variables. On top of the key:

* only a pass is replayed (not flaky, not a failure);
* a check whose ``needs`` include one that runs runs too; the shards of a tests check replay
  all together or not at all; a check reads what a running check ``writes`` runs too (after
  it, as serialisation orders them);
* a pass is recorded only when its inputs are, after it ran, those it was keyed on: same
  contents *and* same stat signatures (a file rewritten during the run, even back to the same
  bytes, is "changed"); a pass earned on an xdist worker only when the worker's own key for
  it is the gate's (another tree, another interpreter: not recorded).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_parex import graph, kinds, runner
from pytest_parex.cache.digests import FileIndex
from pytest_parex.cache.key import KeyBuilder, KeyParts, KeySettings
from pytest_parex.cache.listing import compile_pattern
from pytest_parex.cache.reasons import explain, printable
from pytest_parex.cache.store import Entry, Store
from pytest_parex.config import Check
from pytest_parex.files import write_atomic
from pytest_parex.results import CheckResult, Status

STORE_DIR = "parex-store"
"""The store's directory in pytest's cache (unless ``cache-dir`` names another)."""
OLD_RESULTS_DIR = "parex-results"
"""Where pytest-parex kept one entry per check before the store (removed once seen)."""
INDEX_DIR = "parex-index"
MODE_ENV = "PYTEST_PAREX_CACHE"
"""``0``/``off``: no cache; ``read``: use the store's entries, write none."""
DIR_ENV = "PYTEST_PAREX_CACHE_DIR"


@dataclass(frozen=True)
class Decision:
    """Whether one check replays, and why (not) -- for the plan, ``-v`` and the recording."""

    name: str
    reason: str
    """"cached", or why it runs ("src/a.py changed", "no earlier pass", "cache = false")."""
    parts: KeyParts | None = None
    """Its key parts before the run (None when it is not cached at all)."""
    replay: CheckResult | None = None
    """The stored pass, ready to report (``cached`` set), when it replays."""
    output: bytes = b""
    """The stored output of that pass."""
    dropped: int = 0
    entry: Entry | None = None
    """The store's entry it replays (None for a result kept by the watch loop)."""
    recordable: bool = True
    """Whether a pass of it may be stored (False for a check that is never cached, keyed by
    the watch loop only to see whether its inputs changed)."""
    kept: bool = False
    """The watch loop keeps its last result (any status): its inputs did not change since."""

    @property
    def cached(self) -> bool:
        return self.replay is not None


@dataclass(frozen=True)
class Kept:
    """The last result of a check in a watch loop, and the key it ran on."""

    key: str
    result: CheckResult
    round: int
    parts: KeyParts | None = None
    """The parts of that key: why the check runs again is said against them."""


def disabled_by_environment(environ: Mapping[str, str]) -> bool:
    return environ.get(MODE_ENV, "").strip().lower() in ("0", "false", "no", "off")


def read_only_by_environment(environ: Mapping[str, str]) -> bool:
    """``PYTEST_PAREX_CACHE=read``: replay what the store holds, record nothing (untrusted
    builds: pull requests from forks)."""
    return environ.get(MODE_ENV, "").strip().lower() in ("read", "read-only", "ro")


class Incremental:
    """The cache of one gate run (controller side): decide at configure time, record once the
    gate is decided."""

    def __init__(self, settings: KeySettings, store: Store, index_path: Path) -> None:
        self.settings = settings
        self.rootdir = settings.rootdir
        self.store = store
        self.index_path = index_path
        self.index, warning = FileIndex.load(index_path)
        self.warnings: list[str] = [warning] if warning else []
        self.decisions: dict[str, Decision] = {}
        self.signatures: dict[str, dict[str, str]] = {}
        """Each check that runs: its inputs' stat signatures when it was keyed."""
        self._builder: KeyBuilder | None = None
        self.remote = False
        """Results come from xdist workers: a pass is recorded only when the worker keyed it
        as the gate did (:attr:`CheckResult.inputs_key`)."""

    def builder(self) -> KeyBuilder:
        return KeyBuilder(self.settings, self.index)

    # ------------------------------------------------------------------ keys

    def key_parts(self, checks: Sequence[Check]) -> dict[str, KeyParts]:
        """The key parts of ``checks`` now (:meth:`KeyBuilder.parts`)."""
        self._builder = self.builder()
        return self._builder.parts(checks)

    def _signatures(self, parts: KeyParts) -> dict[str, str]:
        """The stat signatures of a check's inputs, after its key (:meth:`key_parts`)."""
        assert self._builder is not None
        return self._builder.signatures(parts.files)

    def fresh_keys(self, checks: Sequence[Check]) -> dict[str, tuple[KeyParts, dict[str, str]]]:
        """The key parts of ``checks`` now and their inputs' stat signatures, without
        touching what the run's decisions hold (the watch loop's look during a round)."""
        builder = self.builder()
        parts = builder.parts(checks)
        return {name: (found, builder.signatures(found.files)) for name, found in parts.items()}

    def rebase(self, name: str, parts: KeyParts, signatures: dict[str, str]) -> None:
        """``name`` starts (again) on ``parts``: what its pass will be recorded under, and
        what must not change while it runs (the watch loop, restarting a check)."""
        decision = self.decisions.get(name)
        if decision is not None and decision.parts is not None:
            self.decisions[name] = replace(decision, parts=parts)
            self.signatures[name] = signatures

    # ------------------------------------------------------------------ deciding

    def decide(
        self,
        checks: Sequence[Check],
        kept: Mapping[str, Kept] | None = None,
        measure: Mapping[str, str] | None = None,
    ) -> dict[str, Decision]:
        """Which checks replay: each whose current key is one it passed on, whose ``needs``
        all replay, whose sibling shards all replay, and that reads nothing a check that runs
        writes.

        ``kept`` (the watch loop): the last result of each check in this loop and the key it
        ran on; a check whose key is still that one keeps that result, whatever it was -- a
        failure whose inputs did not change is not run again, a check that is never cached
        reruns only when its inputs changed.

        ``measure``: checks that run whatever they replay (name -> why: the run measures
        something the replay cannot give); a pass of theirs is recorded as any other."""
        builder = self.builder()
        never: dict[str, str] = {}
        for check in checks:
            if not check.cache:
                never[check.name] = "cache = false"
            elif not kinds.get(check.kind).cacheable:
                never[check.name] = f"{check.kind} are never cached"
            elif why := builder.uncacheable(check):
                never[check.name] = f"not cached: {why}"
        keyed = [
            c
            for c in checks
            if c.name not in never or (kept is not None and not builder.uncacheable(c))
        ]
        parts = self.key_parts(keyed)
        decisions: dict[str, Decision] = {}
        for check in checks:
            current = parts.get(check.name)
            last = kept.get(check.name) if kept is not None else None
            if current is not None and last is not None and last.key == current.digest():
                decisions[check.name] = Decision(
                    check.name,
                    f"unchanged since round {last.round}",
                    current,
                    last.result,
                    recordable=check.name not in never,
                    kept=True,
                )
                continue
            # In a watch loop, a check runs again because of what changed since its last run.
            since = (
                ""
                if current is None or last is None or last.parts is None
                else (explain(last.parts, current, last_status=None))
            )
            if current is None or check.name in never:
                parts_kept = current if kept is not None else None
                decisions[check.name] = Decision(
                    check.name, since or never[check.name], parts_kept, recordable=False
                )
                continue
            if measure is not None and check.name in measure:
                decisions[check.name] = Decision(check.name, measure[check.name], current)
                continue
            found = self.store.lookup(check.name, current)
            self.warnings.extend(found.warnings)
            if found.entry is not None:
                decisions[check.name] = Decision(
                    check.name,
                    "cached",
                    current,
                    CheckResult.from_dict(found.entry.result),
                    found.entry.output,
                    found.entry.output_dropped,
                    found.entry,
                )
            else:
                decisions[check.name] = Decision(check.name, since or found.reason, current)
        _runs_together(checks, decisions)
        _readers_of_writers(checks, decisions)
        for name, decision in decisions.items():
            if decision.parts is not None and not decision.cached:
                # Only what runs needs them: a pass is recorded when they are the same after.
                self.signatures[name] = self._signatures(decision.parts)
        self.decisions = decisions
        self._save_index()
        return decisions

    def replayed(self, name: str, log: Path) -> CheckResult:
        """The stored pass of ``name``, its output restored to ``log`` (so the report, the
        tail and ``--parex-show-output`` have it)."""
        decision = self.decisions[name]
        assert decision.replay is not None
        if decision.kept:  # its log is still the one of the run that earned it
            return replace(decision.replay, cached=True, start=None, end=None, cpu=0.0)
        note = b""
        if decision.dropped:
            note = (
                f"parex: the cache kept the end of this output ({decision.dropped} bytes "
                "before it were dropped)\n"
            ).encode()
        try:
            write_atomic(log, note + decision.output, durable=False)
        except OSError as exc:
            self.warnings.append(f"parex: cannot restore the cached output of {name}: {exc}")
        if decision.entry is not None:
            self.store.mark_used(decision.entry)
        return replace(
            decision.replay,
            status=Status.PASSED,
            cached=True,
            start=None,
            end=None,
            cpu=0.0,
            worker="",
            log_path=str(log),
            tail="" if not decision.replay.tail else runner.tail(log),
        )

    # ------------------------------------------------------------------ recording

    def record(self, checks: Sequence[Check], results: Iterable[CheckResult], logs: Path) -> None:
        """Once the gate is decided: a pass whose inputs did not change while it ran (content
        and stat signatures), earned on inputs keyed as the gate keyed them, is recorded; a
        run that did not pass removes its check's replayable pass."""
        by_name = {c.name: c for c in checks}
        results = list(results)
        passed: list[CheckResult] = []
        for result in results:
            decision = self.decisions.get(result.name)
            if (
                decision is None
                or decision.parts is None
                or not decision.recordable
                or result.cached
            ):
                continue
            if result.status is Status.PASSED:
                passed.append(result)
            elif result.status in (Status.FLAKY, Status.FAILED, Status.TIMEOUT, Status.ERROR):
                self._warn(
                    self.store.record_not_passed(result.name, result.status.value, decision.parts)
                )
        changed: dict[str, list[str]] = {}
        elsewhere: list[str] = []
        wrote = False
        writers = [by_name[r.name] for r in results if r.ran and by_name[r.name].writes]
        if passed:
            after = self.key_parts([by_name[r.name] for r in passed])
            for result in passed:
                before = self.decisions[result.name].parts
                if before is None:
                    continue
                if self.remote and result.inputs_key != before.digest():
                    elsewhere.append(result.name)
                    continue
                now = after[result.name]
                why = ""
                if now.digest() != before.digest():
                    why = explain(before, now, last_status=None)
                else:
                    why = _rewritten(
                        self.signatures.get(result.name, {}),
                        self._signatures(now),
                        _declared_writes(by_name[result.name], writers),
                    )
                if why:
                    # What it read changed while the gate ran: its pass may not be for what
                    # is there now. Say so, or the next run's "no earlier pass" puzzles.
                    changed.setdefault(why, []).append(result.name)
                    continue
                log = Path(result.log_path) if result.log_path else logs / f"{result.name}.log"
                try:
                    output = log.read_bytes()
                except OSError:
                    output = b""
                stored = {**result.to_dict(), "tail": result.tail}
                # Relative paths only: the entry may be replayed on another checkout.
                stored["log_path"] = _relative(stored.get("log_path") or "", self.rootdir)
                self._warn(self.store.record_pass(result.name, before, stored, output))
                wrote = True
        for why, names in changed.items():
            self.warnings.append(
                f"parex: not cached ({why} while {'it' if len(names) == 1 else 'they'} ran;"
                f" ignore such outputs in git, or give reads): {', '.join(names)}"
            )
        if elsewhere:
            self.warnings.append(
                "parex: not cached (run on an xdist worker whose tree or interpreter is not"
                f" this one's): {', '.join(elsewhere)}"
            )
        if wrote:
            self.store.evict()
        self._save_index()

    def _warn(self, warning: str | None) -> None:
        if warning:
            self.warnings.append(warning)

    def _save_index(self) -> None:
        self._warn(self.index.save(self.index_path))


def _relative(path: str, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside it, else "" (never an absolute path
    of this checkout in a store that another may read)."""
    if not path:
        return ""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return ""


def _declared_writes(check: Check, writers: Sequence[Check]) -> Callable[[str], bool]:
    """The paths a check that ran declared it ``writes`` and that ``check`` never ran beside:
    its own, and those of the writers serialisation kept apart from it (their ``writes``
    overlap its ``reads`` or ``writes``). Rewritten with the same content, they are no sign
    that ``check`` saw another: nothing wrote them while it read them."""
    kept_apart = [
        w
        for w in writers
        if w is check
        or any(graph.globs_overlap(x, y) for x in w.writes for y in (*check.reads, *check.writes))
    ]
    matchers = [_writes_matcher(w.writes) for w in kept_apart]
    return lambda path: any(named(path) for named in matchers)


def _rewritten(
    before: Mapping[str, str], after: Mapping[str, str], exempt: Callable[[str], bool]
) -> str:
    """Which input was written while the checks ran although its content ended as it was
    (its stat signature differs), leaving out the ``exempt`` paths: "" when none."""
    touched = sorted(
        p for p in before.keys() & after.keys() if before[p] != after[p] and not exempt(p)
    )
    if not touched:
        return ""
    first = printable(touched[0])
    more = f", +{len(touched) - 1} more" if len(touched) > 1 else ""
    return f"{first}{more} rewritten"


def open_for_writing() -> list[str]:
    """Files this process has open for writing: its own output (``pytest --parex > out.log``,
    kept open by pytest's capture), never an input of a check -- or no check without ``reads``
    could be replayed. Linux ``/proc``; nothing elsewhere."""
    found: list[str] = []
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            with open(f"/proc/self/fdinfo/{fd}") as fh:
                flags = next(
                    (int(line.split()[1], 8) for line in fh if line.startswith("flags:")), 0
                )
            target = os.readlink(f"/proc/self/fd/{fd}")
        except (OSError, ValueError, IndexError):
            continue
        if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR) and target.startswith("/"):
            found.append(target)
    return found


def _runs_together(checks: Sequence[Check], decisions: dict[str, Decision]) -> None:
    """A check whose dependency runs, runs (it may read what that one writes); the shards of
    one tests check replay all or none (their split changes between runs).

    Settled as passes over ``checks`` would settle it (each check's reason names the first
    dependency or shard that runs when its pass reaches it), without one pass per link of a
    long chain (:func:`pytest_parex.graph.in_passes`)."""
    position = {c.name: i for i, c in enumerate(checks)}
    by_name = {c.name: c for c in checks}
    shards: dict[str, list[str]] = {}  # base name -> its checks, in order
    for check in checks:
        shards.setdefault(check.base_name, []).append(check.name)
    dependents: dict[str, list[str]] = {}
    for check in checks:
        for dep in check.needs:
            dependents.setdefault(dep, []).append(check.name)

    def followers(name: str) -> list[str]:
        siblings = [n for n in shards[by_name[name].base_name] if by_name[n].shard is not None]
        return [*dependents.get(name, ()), *siblings]

    def settle(name: str) -> bool:
        check = by_name[name]
        decision = decisions[name]
        if not decision.cached:
            return False
        why = ""
        for dep in check.needs:
            if dep in decisions and not decisions[dep].cached:
                why = f"needs {dep}, which runs"
                break
        if not why and check.shard is not None:
            for other in shards[check.base_name]:
                if not decisions[other].cached:
                    why = f"{other} runs"
                    break
        if not why:
            return False
        decisions[name] = replace(decision, reason=why, replay=None)
        return True

    graph.in_passes(position, position, followers, settle)


def _readers_of_writers(checks: Sequence[Check], decisions: dict[str, Decision]) -> None:
    """A check that would replay runs when a check that runs ``writes`` what it reads: one of
    its input files, or a path its ``reads`` may name (a file the writer creates). It then runs
    after the writer or before it, as serialisation orders the two -- as without the cache.
    What it writes in turn, and its dependents and shards (:func:`_runs_together`), follow."""
    processed: set[str] = set()
    while True:
        writers = [
            c
            for c in checks
            if c.writes and c.name not in processed and not decisions[c.name].cached
        ]
        if not writers:
            return
        for writer in writers:
            processed.add(writer.name)
            named = _writes_matcher(writer.writes)
            for check in checks:
                decision = decisions[check.name]
                if not decision.cached or decision.parts is None:
                    continue
                hit = next((p for p in decision.parts.files if named(p)), None)
                if hit is None:
                    hit = next(
                        (
                            r
                            for r in check.reads
                            for w in writer.writes
                            if graph.globs_overlap(w, r)
                        ),
                        None,
                    )
                if hit is not None:
                    why = f"{writer.name} writes {printable(hit)} and runs"
                    decisions[check.name] = replace(decision, reason=why, replay=None)
        _runs_together(checks, decisions)


def _writes_matcher(writes: Sequence[str]) -> Callable[[str], bool]:
    """Whether a path (relative to the rootdir) is one the ``writes`` globs name, or lies in a
    directory they name."""
    patterns = []
    for text in writes:
        try:
            patterns.append(compile_pattern(text).regex.fullmatch)
        except ValueError:
            continue

    def named(path: str) -> bool:
        if path.startswith("/"):
            return False
        while path:
            if any(match(path) for match in patterns):
                return True
            path = path.rpartition("/")[0]
        return False

    return named
