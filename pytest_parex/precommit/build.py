"""Hooks -> checks, so that the gate proves what pre-commit assumes.

The contract: every hook's verdict and the final tree are those of a sequential
``pre-commit run --all-files`` in config order. Each hook becomes one check (or, when pre-commit
would split its files over processes, one check per part) of kind ``pre-commit``:

* it **reads** the files it is passed (``reads``: exactly those paths; with ``pass_filenames:
  false`` or ``always_run``, the whole project, so ``reads`` stays empty: every file);
* a hook that may modify files **writes** them (``writes``); a hook of :data:`TABLE` that only
  reads (``ruff check`` without ``--fix``, ``check-yaml``...) writes nothing; a hook the gate
  does not know is assumed to modify what it is passed;
* a writer and any other hook whose files overlap keep config order: the later one is
  ordered ``after`` the earlier (it starts when that one has finished, whatever its verdict);
  ``fail_fast`` makes the hooks after a hook *need* it (a failure skips them, as pre-commit
  stops); a check of the gate that reads files a hook may modify starts after that hook;
* whatever is not ordered runs side by side, and the graph (:mod:`pytest_parex.graph`)
  serialises any pair that still shares a written file.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_parex import graph
from pytest_parex.cache.listing import compile_pattern
from pytest_parex.config import Check, ConfigError, ParexConfig, available_cores, show
from pytest_parex.precommit import CONFIG_FILE, files, manifests
from pytest_parex.precommit import config as pcc

KIND = "pre-commit"
AGENT = "pre-commit"
"""The agent type hooks run on (as many instances as cores, unless configured)."""
NATIVE_SCRIPT = str(Path(__file__).with_name("native.py"))
PART_MIN_FILES = 4
"""pre-commit's xargs: no part with fewer files than this (``max(4, ceil(n / jobs))``)."""
SETTINGS = ("*.toml", "*.cfg", "*.ini", ".*rc", ".*.toml", ".*.cfg", ".*.ini", ".*.json")
"""Files at the top of the tree that configure tools (``pyproject.toml``, ``setup.cfg``,
``.codespellrc``, ``.flake8``...): every hook reads them, beside the files it is passed -- a
tool reads its settings, and a fixer of ``pyproject.toml`` changes them."""
SPLIT_SECONDS = 1.0
"""A hook is split over the agents only when its last run took at least this long: a part is
one more process to start, which a short hook does not win back."""
_ARG_MAX = 2**17
"""pre-commit's cap on one command line's length (bytes), which it splits files to fit."""
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]")
_GLOB_CHARS = re.compile(r"([*?\[])")

NATIVE, SYSTEM, INSTALLED, PRE_COMMIT_ENV, DELEGATED, SKIPPED = (
    "native",
    "system",
    "installed",
    "pre-commit's environment",
    "delegated",
    "skipped",
)


@dataclass(frozen=True)
class Way:
    """How one hook runs here, and what the gate knows of it."""

    how: str
    argv: tuple[str, ...] = ()
    """The command before the hook's ``args`` and file names."""
    env: tuple[tuple[str, str], ...] = ()
    modifies: bool = True
    why: str = ""
    """For the header: the source and version ("table: ruff 0.15.5, pinned v0.15.6") or why
    it is delegated or skipped."""
    whole_project: bool = False
    """It observes every file (a delegated ``pre-commit run`` compares git's whole diff)."""


@dataclass
class Plan:
    """What :func:`hooks_to_checks` made: the checks and the header's notes."""

    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    writers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Hook checks that may modify files -> those files."""


def enabled(config: ParexConfig) -> bool:
    return bool(config.pre_commit) or any(c.kind == KIND for c in config.checks)


def apply(
    config: ParexConfig,
    rootdir: Path,
    *,
    changed: str | None = None,
    environ: Mapping[str, str] | None = None,
    remembered: Mapping[str, float] | None = None,
) -> ParexConfig:
    """``config`` with its pre-commit hooks made into checks (``pre-commit = true`` adds every
    hook; a ``kind = "pre-commit"`` table configures one), ordered as the contract needs, and
    the checks that read what hooks may modify ordered after them. ``changed``: the REF of
    ``--parex-changed`` ("" for the work tree's changes), None for every file; ``remembered``:
    the durations of earlier runs (a long hook is split over the agents)."""
    environ = os.environ if environ is None else environ
    picked: list[str] = []
    how = ""
    if changed is not None:
        picked, how = files.changed(rootdir, changed or None, environ)
    if changed is not None and any(c.kind == "review" for c in config.checks):
        scoped, notes = changed_reviews(config.checks, rootdir, picked)
        if notes:
            config = replace(
                config,
                checks=tuple(scoped),
                notes=(*config.notes, f"--parex-changed ({how}): " + "; ".join(notes)),
            )
    if not enabled(config):
        return config
    path_text = config.pre_commit or CONFIG_FILE
    path = Path(path_text) if Path(path_text).is_absolute() else rootdir / path_text
    shown = path_text
    if not path.is_file():
        if config.source.endswith("(default gate)"):
            return config
        raise ConfigError(f"{config.source}: [tool.parex] pre-commit: {shown}: no such file")
    top = files.toplevel(rootdir)
    if top is None:
        raise ConfigError(
            f"{shown}: pre-commit hooks need a git work tree (pre-commit lists the files with "
            f"git ls-files); {rootdir} is not in one"
        )
    if top.resolve() != rootdir.resolve():
        raise ConfigError(
            f"{shown}: pre-commit runs hooks from the top of the git work tree ({top}); run "
            f"the gate there (the rootdir is {rootdir})"
        )
    pc = pcc.load(path, shown)
    every = files.tracked(rootdir)
    universe = picked if changed is not None else every
    plan = hooks_to_checks(
        config,
        pc,
        rootdir,
        universe,
        environ,
        tracked=every,
        changed=how,
        remembered=remembered,
    )
    configured = [c for c in config.checks if c.kind != KIND]
    ordered = order_after_writers(configured, plan)
    checks = (*plan.checks, *ordered)
    cycle = graph.find_cycle({c.name: c.needs for c in checks})
    if cycle:
        raise ConfigError(
            f"{config.source}: [tool.parex.checks] needs and the pre-commit hooks' order form "
            f"a cycle: {' -> '.join(cycle)} (a check that reads what a hook modifies starts "
            "after it)"
        )
    return replace(config, checks=checks, notes=(*config.notes, *plan.notes))


def resolve_hooks(
    pc: pcc.PreCommitConfig, environ: Mapping[str, str]
) -> tuple[list[pcc.Hook], list[tuple[str, str, str, int, Mapping[str, Any]]]]:
    """Every hook of the config merged with its manifest, in config order; and the remote
    hooks whose manifest is nowhere here: (repo, rev, id, position, configured keys)."""
    hooks: list[pcc.Hook] = []
    unknown: list[tuple[str, str, str, int, Mapping[str, Any]]] = []
    position = 0
    for repo in pc.repos:
        manifest: dict[str, dict[str, Any]] | None = None
        source, clone = "", ""
        if repo.repo in (pcc.LOCAL, pcc.META):
            source = "config"
        else:
            stores = (
                ("pre-commit's store", manifests.pre_commit_clone(environ, repo.repo, repo.rev)),
                ("prek's store", manifests.prek_clone(environ, repo.repo, repo.rev)),
            )
            for store, found in stores:
                if found is not None and (found / manifests.MANIFEST_FILE).is_file():
                    manifest, source, clone = manifests.read_manifest(found), store, str(found)
                    break
            else:
                manifest, source = manifests.table_manifest(repo.repo), "built-in table"
        for configured in repo.hooks:
            hook_id = str(configured["id"])
            if repo.repo in (pcc.LOCAL, pcc.META):
                hooks.append(pcc.merge(repo, None, configured, pc, position, manifest=source))
            elif manifest is not None and hook_id in manifest:
                hooks.append(
                    pcc.merge(
                        repo,
                        manifest[hook_id],
                        configured,
                        pc,
                        position,
                        manifest=source,
                        source_dir=clone,
                    )
                )
            elif manifest is not None and source != "built-in table":
                raise ConfigError(
                    f"{pc.path.name}: repo {repo.repo}, hook {show(hook_id)}: not in that "
                    f"repository's manifest at {repo.rev} (a typo, or a newer rev?)"
                )
            else:
                unknown.append((repo.repo, repo.rev, hook_id, position, configured))
            position += 1
    return hooks, unknown


def _not_executable(program: str, path: str, rootdir: Path) -> str:
    """Why ``program`` cannot start, in pre-commit's words; "" when it can."""
    if os.sep not in program:
        return "" if shutil.which(program, path=path) else "not found"
    full = rootdir / program
    if full.is_dir():
        return "is a directory"
    if not full.is_file():
        return "not found"
    return "" if os.access(full, os.X_OK) else "is not executable"


def way_of(hook: pcc.Hook, environ: Mapping[str, str], path: str, rootdir: Path = Path(".")) -> Way:
    """How ``hook`` runs here (see README, pre-commit hooks)."""
    entry = shlex.split(hook.entry) if hook.language != "pygrep" else [hook.entry]
    if hook.repo == pcc.META:
        return Way(NATIVE, modifies=False, why="native")
    if hook.language == "pygrep":
        return Way(
            NATIVE,
            (sys.executable, "-I", "-S", NATIVE_SCRIPT, "pygrep"),
            modifies=False,
            why="native",
        )
    if hook.language == "fail":
        return Way(
            NATIVE,
            (sys.executable, "-I", "-S", NATIVE_SCRIPT, "fail", hook.entry),
            modifies=False,
            why="native",
        )
    if not entry:
        return Way(SKIPPED, why="its entry is empty")
    table = manifests.known(hook.repo) if hook.repo not in (pcc.LOCAL, pcc.META) else None
    modifies = True
    if table is not None and hook.id in table.modifies:
        modifies = table.modifies[hook.id].given(hook.args)
    elif table is None:
        known_tool = manifests.modifies_by_entry(entry, hook.args)
        modifies = True if known_tool is None else known_tool
    if hook.language in ("unsupported", "unsupported_script"):
        if hook.language == "unsupported_script":
            base = hook.source_dir or "."
            script = os.path.join(base, entry[0]) if hook.source_dir else entry[0]
            if not hook.source_dir and not os.path.isabs(script):
                script = "./" + entry[0] if "/" not in entry[0] else entry[0]
            argv = (script, *entry[1:])
        else:
            argv = tuple(entry)
        why = "system" if hook.language == "unsupported" else "script"
        missing = _not_executable(argv[0], path, rootdir)
        if missing:
            # What pre-commit does: the hook fails saying so (not an error of the gate).
            message = f"Executable `{entry[0]}` {missing}"
            native = (sys.executable, "-I", "-S", NATIVE_SCRIPT, "report", "1", message)
            return Way(NATIVE, native, modifies=False, why=f"{why}: {message}")
        return Way(SYSTEM, argv, modifies=modifies, why=why)
    if hook.language == "python":
        if hook.repo not in (pcc.LOCAL, pcc.META):
            env = manifests.pre_commit_env(
                environ, hook.repo, hook.rev, hook.additional_dependencies, hook.language_version
            )
            if env is not None:
                exe = env / "bin" / entry[0]
                if exe.is_file():
                    extra = (
                        ("VIRTUAL_ENV", str(env)),
                        ("PATH", f"{env / 'bin'}{os.pathsep}{path}"),
                        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
                    )
                    return Way(
                        PRE_COMMIT_ENV,
                        (str(exe), *entry[1:]),
                        extra,
                        modifies,
                        why=f"pre-commit's environment for {hook.rev}",
                    )
        exe_path = shutil.which(entry[0], path=path)
        lacking_deps = _missing_dependencies(hook.additional_dependencies)
        if exe_path is not None and not lacking_deps:
            why = "installed"
            if table is not None and table.distribution:
                have = manifests.installed_version(table.distribution)
                pinned = manifests.version_of(hook.rev)
                if have is not None:
                    why = f"{table.distribution} {have}"
                    if have != pinned:
                        why += f", pinned {hook.rev}"
            return Way(INSTALLED, tuple(entry), modifies=modifies, why=why)
        lacking = (
            f"{entry[0]} is not installed here"
            if exe_path is None
            else (f"{', '.join(lacking_deps)} not installed here")
        )
        return _delegate(hook, environ, path, lacking)
    return _delegate(hook, environ, path, f"language {hook.language} is not run natively")


def _delegate(hook: pcc.Hook, environ: Mapping[str, str], path: str, why: str) -> Way:
    for tool in ("pre-commit", "prek"):
        exe = shutil.which(tool, path=path)
        if exe is not None:
            return Way(
                DELEGATED,
                (exe, "run", hook.id),
                modifies=True,
                why=f"{why}: delegated to {tool}",
                whole_project=True,
            )
    return Way(SKIPPED, why=f"{why}, and neither pre-commit nor prek is installed")


def _missing_dependencies(deps: Sequence[str]) -> list[str]:
    """The ``additional_dependencies`` not installed in this environment (by name; a local
    path or URL cannot be checked, so counts as missing)."""
    out = []
    for dep in deps:
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(==\s*([^,;\s]+))?", dep)
        if match is None:
            out.append(dep)
            continue
        have = manifests.installed_version(match.group(1))
        if have is None or (match.group(4) and have != match.group(4)):
            out.append(dep)
    return out


def _name(hook: pcc.Hook | str, used: set[str]) -> str:
    base = hook if isinstance(hook, str) else (hook.alias or hook.id)
    base = _NAME_BAD.sub("-", base).strip("-._") or "hook"
    if not base[0].isalnum():
        base = "h" + base
    name, n = base, 1
    while name.lower() in used:
        n += 1
        name = f"{base}-{n}"
    used.add(name.lower())
    return name


def glob_escape(path: str) -> str:
    """A file name as a ``reads``/``writes`` glob that names exactly it."""
    return _GLOB_CHARS.sub(r"[\1]", path)


def _parts(hook: pcc.Hook, argv: Sequence[str], names: Sequence[str], jobs: int) -> list[list[str]]:
    """How pre-commit's xargs would split ``names``: parts of at least :data:`PART_MIN_FILES`,
    about ``jobs`` of them (one for ``require_serial``), none longer than its cap."""
    if not hook.pass_filenames or not names:
        return [list(names)]
    jobs = 1 if hook.require_serial else max(1, jobs)
    max_args = max(PART_MIN_FILES, math.ceil(len(names) / jobs))
    base = len(" ".join(argv)) + 1
    out: list[list[str]] = [[]]
    length = base
    for name in names:
        size = len(name.encode()) + 1
        if out[-1] and (length + size > _ARG_MAX or len(out[-1]) >= max_args):
            out.append([])
            length = base
        out[-1].append(name)
        length += size
    return out


def hooks_to_checks(
    config: ParexConfig,
    pc: pcc.PreCommitConfig,
    rootdir: Path,
    universe: Sequence[str],
    environ: Mapping[str, str],
    *,
    tracked: Sequence[str] = (),
    changed: str = "",
    remembered: Mapping[str, float] | None = None,
) -> Plan:
    plan = Plan()
    tracked = tracked or universe
    hooks, unknown = resolve_hooks(pc, environ)
    path_env = _gate_path(environ)
    classifier = files.Classifier(rootdir, files.include_exclude(universe, pc.files, pc.exclude))
    meta_classifier = classifier
    if list(universe) != list(tracked):
        meta_classifier = files.Classifier(
            rootdir, files.include_exclude(tracked, pc.files, pc.exclude)
        )
    meta_classifier.every = list(tracked)
    everything = frozenset(classifier.filenames)
    settings = settings_files(rootdir)
    skips = {s.strip() for s in environ.get("SKIP", "").split(",") if s.strip()}
    skips |= set(config.pre_commit_skip)
    explicit = {str(c.option("hook")): c for c in config.checks if c.kind == KIND}
    only_explicit = not config.pre_commit
    agents = dict(config.agents).get(AGENT) or available_cores()
    used = {c.name.lower() for c in config.checks if c.kind != KIND}
    entries: list[tuple[pcc.Hook | None, str, int, Way, list[str]]] = []
    skipped: list[str] = []
    no_files: list[str] = []
    other_stage: list[str] = []
    ways: list[str] = []
    for repo, rev, hook_id, position, configured in unknown:
        # Without its manifest only the configured keys are known: stages and SKIP apply.
        stages = tuple(configured.get("stages", ())) or pc.default_stages
        alias = str(configured.get("alias", ""))
        hook = pcc.Hook(
            repo=repo,
            rev=rev,
            id=hook_id,
            name=hook_id,
            entry="",
            language="",
            alias=alias,
            stages=stages,
            position=position,
        )
        if pcc.RUN_STAGE not in stages:
            other_stage.append(alias or hook_id)
            continue
        if pcc.selected_by(hook, sorted(skips)):
            skipped.append(f"{alias or hook_id} (SKIP / pre-commit-skip)")
            continue
        way = _delegate(
            hook,
            environ,
            path_env,
            f"{repo} at {rev} is in no store here and not in the built-in table",
        )
        entries.append((None, alias or hook_id, position, way, []))
    made: list[tuple[pcc.Hook, Way, Check, list[str]]] = []
    for hook in sorted(hooks, key=lambda h: h.position):
        label = hook.alias or hook.id
        if only_explicit and hook.id not in explicit and hook.alias not in explicit:
            continue
        if pcc.RUN_STAGE not in hook.stages:
            other_stage.append(label)
            continue
        if pcc.selected_by(hook, sorted(skips)):
            skipped.append(f"{label} (SKIP / pre-commit-skip)")
            continue
        names = classifier.for_hook(hook)
        if not names and not hook.always_run:
            no_files.append(label)
            continue
        way = way_of(hook, environ, path_env, rootdir)
        if way.how == SKIPPED:
            skipped.append(f"{label} ({way.why})")
            continue
        if hook.repo == pcc.META:
            way = _meta_way(hook, hooks, pc, meta_classifier)
        entries.append((hook, label, hook.position, way, names))
    taken: dict[str, float] = {}
    for name, seconds in (remembered or {}).items():
        stem = name.split("[", 1)[0]
        taken[stem] = taken.get(stem, 0.0) + seconds
    for hook_or_none, label, position, way, names in sorted(entries, key=lambda e: e[2]):
        if hook_or_none is None:
            if way.how == SKIPPED:
                skipped.append(f"{label} ({way.why})")
                continue
            if only_explicit and label not in explicit:
                continue
            hook = pcc.Hook(
                repo="",
                rev="",
                id=label,
                name=label,
                entry="",
                language="",
                position=position,
                pass_filenames=False,
                always_run=True,
            )
            names = sorted(everything)
        else:
            hook = hook_or_none
        base = explicit.get(hook.id) or explicit.get(hook.alias)
        # pre-commit splits a hook's files over the cores (not pygrep's, not fail's); here
        # the parts go to the idle agents -- when the hook is long enough to win it back.
        long = taken.get(base.name if base else _name(hook, set(used)), 0.0) >= SPLIT_SECONDS
        jobs = agents if long and hook.language not in ("pygrep", "fail") else 1
        said = f": {way.why}" if way.why and way.why != way.how else ""
        if hook.manifest not in ("config", "built-in table", ""):
            said += f"; manifest from {hook.manifest}"
        ways.append(f"{label} ({way.how}{said})")
        for check, part in _checks_of(
            hook, way, names, base, used, jobs, config, changed, pc, everything, settings
        ):
            made.append((hook, way, check, part))
    known_ids = {h.id for h in hooks} | {h.alias for h in hooks if h.alias}
    known_ids |= {hook_id for _, _, hook_id, _, _ in unknown}
    for wanted, check in explicit.items():
        if wanted not in known_ids:
            raise ConfigError(
                f"{config.source}: [tool.parex.checks.{check.name}] hook {show(wanted)} is not "
                f"a hook of {pc.path.name}; expected one of: {', '.join(sorted(known_ids))}"
            )
    plan.checks = _ordered(made, pc, everything, plan, settings)
    summary = f"pre-commit: {pc.path.name}, {len(ways)} hook{'s' if len(ways) != 1 else ''}: "
    summary += ", ".join(ways) if ways else "none runs"
    if changed:
        summary += f"; files: {len(universe)} changed ({changed})"
    plan.notes.append(summary)
    if no_files:
        plan.notes.append(f"pre-commit: no files to check: {', '.join(no_files)}")
    if skipped:
        plan.notes.append(f"pre-commit: skipped: {'; '.join(skipped)}")
    if other_stage:
        plan.notes.append(
            f"pre-commit: not in the pre-commit stage (pre-commit run skips them too): "
            f"{', '.join(other_stage)}"
        )
    plan.notes.extend(pc.warnings)
    return plan


def _meta_way(
    hook: pcc.Hook,
    hooks: Sequence[pcc.Hook],
    pc: pcc.PreCommitConfig,
    classifier: files.Classifier,
) -> Way:
    """The meta hooks, decided here from the same classification as the hooks' (``native.py``
    prints the verdict). ``classifier``: every tracked file through the top-level filters,
    as pre-commit's meta hooks see them whatever files the run was given."""
    native = (sys.executable, "-I", "-S", NATIVE_SCRIPT)
    if hook.id == "identity":
        return Way(NATIVE, (*native, "identity"), modifies=False, why="native")
    lines: list[str] = []
    if hook.id == "check-hooks-apply":
        for other in hooks:
            if other.always_run or other.language == "fail":
                continue
            if not classifier.for_hook(other):
                lines.append(f"{other.id} does not apply to this repository")
    else:
        # What pre-commit checks: the configured keys only (not the manifest's), types
        # defaulting to none.
        if not _exclude_matches(classifier.every, "", pc.exclude):
            lines.append(f"The global exclude pattern {pc.exclude!r} does not match any files")
        for repo in pc.repos:
            for raw in repo.hooks:
                typed = classifier.by_types(
                    classifier.filenames,
                    raw.get("types", ()),
                    raw.get("types_or", ()),
                    raw.get("exclude_types", ()),
                )
                exclude = raw.get("exclude", "^$")
                if not _exclude_matches(typed, raw.get("files", ""), exclude):
                    lines.append(
                        f"The exclude pattern {exclude!r} for {raw['id']} does not match any files"
                    )
    code = "1" if lines else "0"
    return Way(NATIVE, (*native, "report", code, *lines), modifies=False, why="native")


def _exclude_matches(names: Sequence[str], include: str, exclude: str) -> bool:
    if exclude == "^$":
        return True
    inc, exc = re.compile(include), re.compile(exclude)
    return any(inc.search(n) and exc.search(n) for n in names)


def _gate_path(environ: Mapping[str, str]) -> str:
    """The PATH checks get (:func:`pytest_parex.execute.environment`): this Python's scripts
    first."""
    bindir = str(Path(sys.executable).parent)
    path = environ.get("PATH", "")
    return path if bindir in path.split(os.pathsep) else os.pathsep.join([bindir, path])


def _checks_of(
    hook: pcc.Hook,
    way: Way,
    names: Sequence[str],
    base: Check | None,
    used: set[str],
    jobs: int,
    config: ParexConfig,
    changed: str,
    pc: pcc.PreCommitConfig,
    everything: frozenset[str],
    settings: tuple[str, ...] = (),
) -> list[tuple[Check, list[str]]]:
    name = base.name if base is not None else _name(hook, used)
    if base is not None and base.option("modifies") is not None:
        # The user's word on a hook the gate does not know (modifies = false: a reader).
        way = replace(way, modifies=bool(base.option("modifies")))
    if base is not None:
        used.add(base.name.lower())
    command = (*way.argv, *hook.args)
    if hook.language == "pygrep":
        command = (*way.argv, *hook.args, hook.entry)  # pre-commit's order: flags, pattern
    elif hook.language == "fail":
        command = way.argv  # the message and the files; no args
    if way.how == DELEGATED:
        command = (*way.argv, "--color=never", "--config", str(pc.path))
        command += ("--files", *names) if changed else ("--all-files",)
    if hook.repo == pcc.META and hook.id != "identity":
        command = way.argv
    passes = hook.pass_filenames and way.how != DELEGATED and hook.repo != pcc.META
    parts = _parts(hook, command, names, jobs) if passes else [list(names)]
    whole = _whole(hook, way)
    out: list[tuple[Check, list[str]]] = []
    definition = json.dumps(hook.definition(), sort_keys=True, separators=(",", ":"))
    for k, part in enumerate(parts, start=1):
        shard = (k, len(parts)) if len(parts) > 1 else None
        argv = (*command, *part) if passes else command
        options: dict[str, Any] = {
            "hook": hook.alias or hook.id,
            "definition": definition,
            "how": way.how,
            "modifies": way.modifies,
            "files": tuple(part),
            "verbose": hook.verbose,
            "changed": bool(changed),
        }
        fields: dict[str, Any] = {
            "timeout": config.timeout,
            "retries": 0,
            "description": hook.name,
        }
        if base is not None:
            for key in (
                "timeout",
                "description",
                "blocking",
                "expected",
                "cache",
                "retries",
                "agent",
                "exclusive",
            ):
                fields[key] = getattr(base, key)
        check = Check(
            name=f"{name}[{k}/{len(parts)}]" if shard else name,
            agent=fields.pop("agent", AGENT),
            argv=tuple(argv),
            kind=KIND,
            env=tuple(
                sorted(
                    {"PRE_COMMIT": "1", **dict(way.env), **(dict(base.env) if base else {})}.items()
                )
            ),
            reads=() if whole else tuple(glob_escape(p) for p in dict.fromkeys([*part, *settings])),
            writes=tuple(glob_escape(p) for p in part) if way.modifies else (),
            shard=shard,
            options=tuple(sorted(options.items())),
            **fields,
        )
        if base is not None and (base.reads or base.writes or base.needs):
            check = replace(
                check,
                reads=(*check.reads, *base.reads),
                writes=(*check.writes, *base.writes),
                needs=base.needs,
                after=base.after,
            )
        out.append((check, list(everything) if whole else part))
    return out


def _ordered(
    made: Sequence[tuple[pcc.Hook, Way, Check, list[str]]],
    pc: pcc.PreCommitConfig,
    everything: frozenset[str],
    plan: Plan,
    settings: tuple[str, ...] = (),
) -> list[Check]:
    """The hook checks with the edges that keep pre-commit's order where it matters: a later
    hook is ``after`` an earlier one when either may modify what the other reads or writes
    (the parts of a ``require_serial`` hook one after another); with ``fail_fast`` (the
    config's or the earlier hook's own) it *needs* the earlier one."""
    reads: list[frozenset[str]] = []
    writes: list[frozenset[str]] = []
    for hook, way, check, part in made:
        reads.append(everything if _whole(hook, way) else frozenset([*part, *settings]))
        written = frozenset(check.option("files")) if check.option("modifies") else frozenset()
        writes.append(written)
        if written:
            plan.writers[check.name] = tuple(sorted(written))
    out: list[Check] = []
    for j, (hook, _way, check, _part) in enumerate(made):
        after: list[str] = list(check.after)
        needs: list[str] = [n for n in check.needs if n not in check.after]
        for i in range(j):
            earlier_hook, _, earlier, _ = made[i]
            if earlier_hook.position == hook.position:
                if hook.require_serial:
                    after.append(earlier.name)
                continue  # the parts of one hook have disjoint files
            if pc.fail_fast or earlier_hook.fail_fast:
                needs.append(earlier.name)
            elif writes[i] & (reads[j] | writes[j]) or writes[j] & reads[i]:
                after.append(earlier.name)
        after = [n for n in dict.fromkeys(after) if n not in needs]
        out.append(replace(check, needs=tuple(dict.fromkeys([*needs, *after])), after=tuple(after)))
    return out


def settings_files(rootdir: Path) -> tuple[str, ...]:
    """The files of :data:`SETTINGS` at the top of the tree (tracked or not), sorted."""
    try:
        names = sorted(os.listdir(rootdir))
    except OSError:
        return ()
    return tuple(
        n
        for n in names
        if n != CONFIG_FILE
        and any(fnmatch.fnmatchcase(n, p) for p in SETTINGS)
        and (rootdir / n).is_file()
    )


def _whole(hook: pcc.Hook, way: Way) -> bool:
    """Whether the hook's inputs are the whole project (not only the files it is passed)."""
    return (not hook.pass_filenames) or hook.always_run or way.whole_project


def order_after_writers(checks: Sequence[Check], plan: Plan) -> list[Check]:
    """The gate's other checks, each ordered after the hooks that may modify what it reads
    (every file, for a check without ``reads``): it sees the tree the hooks leave."""
    if not plan.writers:
        return list(checks)
    out = []
    for check in checks:
        later: list[str] = []
        if check.reads:
            patterns = [compile_pattern(p) for p in check.reads]
            for writer, written in plan.writers.items():
                if any(_names(p, path) for p in patterns for path in written):
                    later.append(writer)
        else:
            later = list(plan.writers)
        if later:
            after = tuple(dict.fromkeys([*check.after, *later]))
            needs = tuple(dict.fromkeys([*check.needs, *later]))
            check = replace(check, needs=needs, after=after)
        out.append(check)
    return out


def _names(pattern: Any, path: str) -> bool:
    """Whether a compiled ``reads`` glob names ``path`` (itself, or a directory above it)."""
    if pattern.literal:
        base = pattern.base
        return not base or path == base or path.startswith(base + "/")
    if pattern.regex.fullmatch(path):
        return True
    parent = path
    while "/" in parent:
        parent = parent.rsplit("/", 1)[0]
        if pattern.regex.fullmatch(parent):
            return True
    return False


def with_hook_tables(table: Mapping[str, Any], config: ParexConfig) -> dict[str, Any]:
    """``table`` with a ``[tool.parex.checks.NAME]`` for every hook check of ``config`` that it
    does not configure yet (``--parex-show-config``: to take over and edit)."""
    checks = dict(table.get("checks", {}))
    for check in config.checks:
        if check.kind != KIND or check.base_name in checks:
            continue
        entry: dict[str, Any] = {"kind": KIND}
        hook = str(check.option("hook"))
        if hook != check.base_name:
            entry["hook"] = hook
        checks[check.base_name] = entry
    return {**table, "checks": checks}


FILE_SCOPED = ("ruff-check", "ruff-format")
"""Review tools whose verdict on a file depends on that file alone: ``--parex-changed`` gives
them the changed files instead of ``.``."""


def changed_reviews(
    checks: Sequence[Check], rootdir: Path, picked: Sequence[str]
) -> tuple[list[Check], list[str]]:
    """The file-scoped reviews (ruff) on the changed Python files only; a review with none
    left is dropped. Returns the checks and the notes."""
    python = [p for p in picked if p.endswith((".py", ".pyi")) and (rootdir / p).is_file()]
    out: list[Check] = []
    notes: list[str] = []
    for check in checks:
        scoped = (
            check.kind == "review"
            and check.option("tool") in FILE_SCOPED
            and not check.shell
            and check.argv[-1:] == (".",)
        )
        if not scoped:
            out.append(check)
            continue
        if not python:
            notes.append(f"{check.name}: no changed Python files (not run)")
            continue
        options = tuple(sorted({**dict(check.options), "changed-files": len(python)}.items()))
        out.append(replace(check, argv=(*check.argv[:-1], *python), options=options))
        notes.append(f"{check.name}: {len(python)} changed file{'s' if len(python) != 1 else ''}")
    return out, notes
