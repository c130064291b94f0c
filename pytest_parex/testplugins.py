"""The gate session is not a test session: the project's test options and plugins stay with
its tests.

A project configures pytest for its tests: ``addopts = "-n auto -x --cov=pkg"`` in the ini
file, ``PYTEST_ADDOPTS`` in CI, ``timeout = 5`` for pytest-timeout, ``reruns = 2`` for
pytest-rerunfailures. Under ``pytest --parex`` the session's items are the gate's checks, and
every check that runs pytest starts a child pytest that reads the same ini file and
environment by itself. Acting on those settings in the gate session as well changes the gate
(``-n auto`` picks its workers, ``-x`` makes it fail fast, pytest-timeout interrupts a long
check, pytest-rerunfailures runs a failed one again) or breaks it (pytest-cov decides at
start-up that the session is not distributed, then the gate starts xdist workers:
INTERNALERROR).

Three measures, all only when ``--parex`` is on the command line:

* **Options** (:func:`set_aside`): the gate session takes its options from the command line.
  What the ini file's ``addopts`` and ``PYTEST_ADDOPTS`` add is set aside before any plugin
  acts on it, except ``--parex*`` options, the options pytest itself has already acted on to
  start up (``-p``: plugins stay loaded or blocked as the user said), those that say how to
  load conftest files, and ``--color``. pytest-cov's options are set aside from the command
  line too: the checks run in subprocesses, so coverage of the gate measures nothing. The
  header line names what was set aside (:func:`header_lines`).
* **conftest.py files** (:func:`leave_conftests`): they are the tests' setup -- fixtures,
  hypothesis profiles, imports of the test dependencies -- and only the checks' child pytest
  needs them. The gate session loads none, so a slow one does not delay the first check and
  a broken one (a test dependency missing) fails the checks that run the tests, not the gate.
  The one exception is the gate's own: ``conftest.py`` in the rootdir when it implements a
  ``pytest_parex_*`` hook (it names one). ini keys that only a conftest registers are
  accepted (:func:`accept_ini_keys`): the tests' pytest checks them.
* **Plugins** (:func:`marks`): check items carry the opt-out markers of the per-test plugins
  that are loaded (``timeout(0)``, ``flaky(reruns=0)``); each plugin documents its marker as
  taking precedence over its ini key, environment variable and option. The gate has its own
  ``timeout`` and ``retries`` per check.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_parex import compat

KEPT = frozenset(
    {
        # Acted on by pytest before any plugin's pytest_load_initial_conftests: which plugins
        # load (-p, autoload), which config file and rootdir, ini overrides, assertion rewriting
        # of the plugins just imported, the debug log. Setting them aside would leave option
        # values that contradict what already happened.
        "-p",
        "--disable-plugin-autoload",
        "-c",
        "--config-file",
        "--inifile",
        "--rootdir",
        "-o",
        "--override-ini",
        "--assert",
        "--debug",
        # How conftest.py files load: pytest acts on them right after this hook, in the gate
        # session as in any other (a conftest that only imports with them would fail).
        "--confcutdir",
        "--noconftest",
        "--import-mode",
        # The terminal's, not the tests' (CI sets PYTEST_ADDOPTS=--color=yes for every pytest).
        "--color",
    }
)
"""Options the gate keeps wherever they come from (besides its own ``--parex*``)."""

ADDOPTS = "addopts"
ENV = "PYTEST_ADDOPTS"
COMMAND_LINE = "command line"


def option_name(word: str) -> str:
    """``--cov=pkg`` -> ``--cov``; ``-pno:x`` -> ``-p``; a positional argument -> ``""``."""
    if not word.startswith("-") or word == "-":
        return ""
    if word.startswith("--"):
        return word.split("=", 1)[0]
    return word[:2]


def is_parex(name: str) -> bool:
    return name == "--parex" or name.startswith("--parex-")


def is_coverage(name: str) -> bool:
    """pytest-cov's options (``--cov``, ``--cov-report``, ``--no-cov``, ...)."""
    return name == "--cov" or name.startswith(("--cov-", "--no-cov"))


def group_words(words: Sequence[str], consumes: Callable[[str, str], bool]) -> list[list[str]]:
    """Split ``words`` into options with their values, and positional arguments.

    ``consumes(option, next_word)`` tells whether the parser reads ``next_word`` as the
    option's value (:func:`pytest_parex.compat.consumes`). A word starting with ``-`` is never
    a value, as in argparse; ``--`` makes the rest positional; ``@file`` (argparse reads more
    arguments from it) stays one group of its own.
    """
    groups: list[list[str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            groups.append(list(words[i:]))
            break
        following = words[i + 1] if i + 1 < len(words) else None
        if (
            option_name(word)
            and following is not None
            and not following.startswith(("-", "@"))
            and consumes(word, following)
        ):
            groups.append([word, following])
            i += 2
        else:
            groups.append([word])
            i += 1
    return groups


@dataclass(frozen=True)
class SetAside:
    """What the gate session did not take, and where it came from."""

    options: tuple[tuple[str, str], ...] = ()
    """(source, the option as written) in command-line order; source is ``addopts``,
    ``PYTEST_ADDOPTS`` or ``command line``."""
    unrecognised: bool = False
    """pytest's arguments were not ini addopts + PYTEST_ADDOPTS + command line (another plugin
    changed them first): nothing was set aside."""

    def lines(self) -> list[str]:
        out = []
        tests = _by_source(o for o in self.options if o[0] != COMMAND_LINE)
        if tests:
            out.append(
                "parex: set aside for the gate (the tests checks' own pytest reads them): " + tests
            )
        coverage = [text for source, text in self.options if source == COMMAND_LINE]
        if coverage:
            out.append(
                f"parex: set aside for the gate: {', '.join(coverage)} (command line; the "
                "checks run in subprocesses: put coverage options in addopts or a tests "
                "check's pytest = [...])"
            )
        if self.unrecognised:
            out.append(
                "parex: could not tell addopts from the command line (another plugin changed "
                "pytest's arguments first): addopts options apply to the gate"
            )
        return out


def _by_source(options: Iterable[tuple[str, str]]) -> str:
    """``-n auto, -x (addopts); --timeout=5 (PYTEST_ADDOPTS)``."""
    parts: list[str] = []
    current: str | None = None
    texts: list[str] = []
    for source, text in options:
        if source != current and texts:
            parts.append(f"{', '.join(texts)} ({current})")
            texts = []
        current = source
        texts.append(text)
    if texts:
        parts.append(f"{', '.join(texts)} ({current})")
    return "; ".join(parts)


SET_ASIDE = pytest.StashKey[SetAside]()
PARSER = pytest.StashKey[pytest.Parser]()
"""The session's argument parser (it knows every loaded plugin's options): the gate reads the
test paths of a tests check's arguments with it."""


def split(
    sources: Sequence[tuple[str, Sequence[str]]],
    command_line: Sequence[str],
    consumes: Callable[[str, str], bool],
) -> tuple[list[str], SetAside]:
    """The gate's arguments (in pytest's order: ``sources``, then ``command_line``) and what
    was set aside. Pure: ``consumes`` is the parser's knowledge of option values."""
    kept: list[str] = []
    aside: list[tuple[str, str]] = []
    for source, words in sources:
        for group in group_words(words, consumes):
            name = option_name(group[0])
            if name and (is_parex(name) or name in KEPT):
                kept.extend(group)
            else:
                aside.append((source, shlex.join(group)))
    for group in group_words(command_line, consumes):
        if is_coverage(option_name(group[0])):
            aside.append((COMMAND_LINE, shlex.join(group)))
        else:
            kept.extend(group)
    return kept, SetAside(tuple(aside))


def set_aside(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> bool:
    """From ``pytest_load_initial_conftests`` (a tryfirst wrapper: before every plain
    implementation, pytest-cov's included): keep in ``args`` only what the gate takes.
    Returns whether the gate is on (``--parex`` parsed from the command line)."""
    command_line = [str(a) for a in early_config.invocation_params.args]
    if not getattr(parser.parse_known_args(command_line), "parex", False):
        return False
    ini = [str(a) for a in early_config.getini("addopts")]
    env = shlex.split(os.environ.get(ENV, ""))
    if [str(a) for a in args] != [*ini, *env, *command_line]:
        early_config.stash[SET_ASIDE] = SetAside(unrecognised=True)
        return True

    def consumes(option: str, following: str) -> bool:
        return compat.consumes(parser, option, following)

    kept, aside = split([(ADDOPTS, ini), (ENV, env)], command_line, consumes)
    early_config.stash[SET_ASIDE] = aside
    if aside.options:
        args[:] = kept
        compat.reparse_known_args(early_config, parser, args)
    return True


HOOK_PREFIX = b"pytest_parex_"


def gate_conftest(rootpath: Path) -> Path | None:
    """The rootdir's ``conftest.py`` when it implements a gate hook (names a
    ``pytest_parex_*`` function): the one conftest file the gate session loads."""
    path = rootpath / "conftest.py"
    try:
        text = path.read_bytes()
    except OSError:
        return None
    return path if HOOK_PREFIX in text else None


def leave_conftests(early_config: pytest.Config) -> Callable[[], None]:
    """From the same wrapper, before pytest loads the initial conftests: load none but the
    gate's own (:func:`gate_conftest`). Returns what undoes the change once they are loaded.
    ``--noconftest`` given: nothing to do."""
    if getattr(early_config.known_args_namespace, "noconftest", False):
        return lambda: None
    return compat.initial_conftests(early_config, gate_conftest(early_config.rootpath))


def accept_ini_keys(early_config: pytest.Config, parser: pytest.Parser) -> None:
    """ini keys no loaded plugin knows (a test conftest registers them) are the tests':
    accepted here, so ``strict_config`` and ``filterwarnings = error`` do not fail the gate
    over them. The checks' own pytest loads that conftest and checks them."""
    for key in compat.unknown_ini_keys(early_config):
        parser.addini(key, help="(read by the tests' own pytest, not by the gate)")


def header_lines(config: pytest.Config) -> list[str]:
    """The header lines that say what the gate set aside (none when nothing was)."""
    aside = config.stash.get(SET_ASIDE, None)
    return aside.lines() if aside is not None else []


def marks(config: pytest.Config) -> list[pytest.MarkDecorator]:
    """Markers that make the loaded per-test plugins leave a check item alone.

    pytest-timeout: ``timeout(0)`` is no timeout (its SIGALRM would interrupt the check, its
    thread method would end the worker). pytest-rerunfailures: ``flaky(reruns=0)`` runs a
    failed check once. Both markers win over the plugins' ini keys and options.
    """
    manager = config.pluginmanager
    out = []
    if manager.hasplugin("timeout"):
        out.append(pytest.mark.timeout(0))
    if manager.hasplugin("rerunfailures"):
        out.append(pytest.mark.flaky(reruns=0))
    return out
