"""The one place that reaches into pytest and pytest-xdist internals; each reach says why.

Checked on pytest 8.3.5 and 9.2.0 with pytest-xdist 3.6.1, 3.7.0 and 3.8.0 (pinned >=3.6,<4).
Before a new pytest major, re-read ``Config._preparse`` / ``Config.parse``
(``_pytest/config/__init__.py``): the argument functions rely on the order described there.

xdist -- the cancel signal must reach a worker while it is busy running a check. xdist has no
public hook for custom controller->worker commands, but ``WorkerController.sendcommand``
(public on the controller) delivers any ``(name, kwargs)`` to the worker's
``WorkerInteractor.handle_command``, which runs in execnet's receiver thread -- not blocked by
the running test -- and ignores names it does not know. Wrapping that method is the smallest
possible intrusion.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

CANCEL_COMMAND = "parex_cancel"

CommandHandler = Callable[[str, dict[str, Any]], None]


def install_command_handler(config: pytest.Config, handler: CommandHandler) -> bool:
    """Route worker commands named ``parex_*`` to ``handler``; return whether it worked.

    Must run before the worker's ``pytest_runtestloop`` registers the channel callback (it
    binds the method then).
    """
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor" and hasattr(plugin, "handle_command"):
            original = plugin.handle_command

            def handle_command(command: Any, _original: Any = original) -> None:
                if isinstance(command, tuple) and len(command) == 2:
                    name, kwargs = command
                    if isinstance(name, str) and name.startswith("parex_"):
                        handler(name, kwargs)
                        return
                _original(command)

            plugin.handle_command = handle_command
            return True
    return False


# ---------------------------------------------------------------------------- arguments

FILE_OR_DIR = "file_or_dir"
"""The namespace attribute of pytest's positional arguments (``_pytest.config.argparsing.
FILE_OR_DIR``; plugins read it as ``config.option.file_or_dir``)."""


def consumes(parser: pytest.Parser, option: str, following: str) -> bool:
    """Whether pytest's argument parser reads ``following`` as the value of ``option``.

    Asked of the parser itself (public ``Parser.parse_known_args``), so it holds for every
    option of every plugin loaded so far, ``nargs="?"`` ones included: ``following`` is a
    value unless it ends up among the positional arguments. An option no loaded plugin knows
    (``-n auto`` under ``-p no:xdist``) is taken to have ``following`` as its value: an
    ``addopts`` word after an option is far more often its value than a test path.
    """
    try:
        namespace, unknown = parser.parse_known_and_unknown_args([option, following])
    except pytest.UsageError:
        return True  # argparse tried to read it as the option's value (and rejected it)
    if option in unknown:
        return True
    return following not in (getattr(namespace, FILE_OR_DIR, None) or [])


def positional_args(parser: pytest.Parser, argv: Sequence[str]) -> list[str] | None:
    """The test paths and node ids pytest takes from ``argv`` (an option's value is not one:
    ``--deselect tests/a.py``, ``-k slow``), as this session's parser reads them; None when it
    cannot tell (a usage error)."""
    try:
        namespace, _ = parser.parse_known_and_unknown_args(list(argv))
    except pytest.UsageError:
        return None
    return [str(p) for p in getattr(namespace, FILE_OR_DIR, None) or []]


def reparse_known_args(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Recompute ``early_config.known_args_namespace`` from ``args``, as pytest did just before
    calling ``pytest_load_initial_conftests``.

    ``Config.known_args_namespace`` is not documented API, but it is what the
    ``pytest_load_initial_conftests`` implementations that run after ours read (pytest's own
    capture and conftest loading, pytest-cov's decision to start coverage), while ``args`` --
    edited in place by the caller -- is what ``Config.parse`` turns into ``config.option``
    afterwards (pytest 8.3 and 9.2 alike). pytest fills in ``confcutdir`` after parsing (the
    inifile's directory); that default is kept when ``args`` do not set it.
    """
    old = early_config.known_args_namespace
    fresh: argparse.Namespace = parser.parse_known_args(
        args, namespace=copy.copy(early_config.option)
    )
    if getattr(fresh, "confcutdir", None) is None:
        fresh.confcutdir = getattr(old, "confcutdir", None)
    early_config.known_args_namespace = fresh


def initial_conftests(early_config: pytest.Config, anchor: Path | None) -> Callable[[], None]:
    """Make pytest's own ``pytest_load_initial_conftests`` (which runs after the caller's
    wrapper) load only the conftest files of ``anchor``'s directory and its parents up to
    ``confcutdir`` -- or none at all when ``anchor`` is None. Returns the undo.

    pytest anchors the initial conftests at ``known_args_namespace.file_or_dir`` (or
    ``testpaths``) *and* the ``test*`` directories below each directory anchor; a file anchor
    has none. ``noconftest`` there is what ``--noconftest`` sets: pytest keeps it for every
    later lookup (the fs hook proxies of collected nodes), so no conftest loads afterwards
    either. pytest 8.3 and 9.2 alike.
    """
    namespace = early_config.known_args_namespace
    if anchor is None:
        namespace.noconftest = True
        return lambda: None
    saved = getattr(namespace, FILE_OR_DIR, None)
    setattr(namespace, FILE_OR_DIR, [str(anchor)])

    def undo() -> None:
        setattr(namespace, FILE_OR_DIR, saved)

    return undo


def unknown_ini_keys(config: pytest.Config) -> list[str]:
    """Keys of the ini file that no loaded plugin registered (``Config._get_unknown_ini_keys``,
    pytest 8.3 and 9.2; what pytest's "Unknown config option" check reads after collection)."""
    get = getattr(config, "_get_unknown_ini_keys", None)
    return sorted(get()) if callable(get) else []


def leave_unrewritten(package: str) -> None:
    """Import ``package``'s modules from here on without pytest's assertion rewriting.

    pytest rewrites the modules of every installed plugin (``_mark_plugins_for_rewrite``,
    before it imports them): parsed, rewritten and compiled anew in every pytest process
    where it cannot cache the result (``PYTHONDONTWRITEBYTECODE=1``, read-only installs),
    0.3-0.5 s for the gate's modules. Their asserts are internal invariants, never a test's:
    the plain ones serve. ``AssertionRewritingHook._must_rewrite`` holds the marked names and
    ``_marked_for_rewrite_cache`` the decisions made so far (pytest 8.3 and 9.2).
    """
    for hook in sys.meta_path:
        if type(hook).__name__ != "AssertionRewritingHook":
            continue
        marked = getattr(hook, "_must_rewrite", None)
        cache = getattr(hook, "_marked_for_rewrite_cache", None)
        if isinstance(marked, set):
            marked.discard(package)
        if isinstance(cache, dict):
            for name in [n for n in cache if n == package or n.startswith(package + ".")]:
                del cache[name]


# ---------------------------------------------------------------------------- a shard's loop


def tear_down_for(item: pytest.Item) -> None:
    """Tear down what is set up and ``item`` does not share (its module, its class...), as
    pytest does after a test whose ``nextitem`` is ``item``.

    A shard that takes units as it goes names the next test it will run as ``nextitem``
    before that test's unit is taken (taking it earlier would hold two units, one of them
    for the whole of a long test); when another shard took that unit meanwhile, the test
    that follows is another one, and what the teardown kept for the named one must go
    before it is set up -- else pytest's ``SetupState.setup`` fails it with "previous item
    was not torn down properly". ``Session._setupstate.teardown_exact`` is what pytest's
    own ``pytest_runtest_teardown`` calls (pytest 8.x, 9.x); called from the next test's
    setup, an error in a finalizer is that test's setup error, as in a plain run.
    """
    item.session._setupstate.teardown_exact(item)


# ---------------------------------------------------------------------------- xdist's loop

_NO_WORKERS = "Unexpectedly no active workers available"
"""DSession.loop_once raises RuntimeError with this message when every worker is gone while
the session still waits for them (xdist 3.6-3.8): no exception class of its own to catch."""


def no_workers_left(exc: BaseException) -> bool:
    """Whether ``exc`` is xdist's "every worker is gone" error."""
    return isinstance(exc, RuntimeError) and str(exc) == _NO_WORKERS


# ---------------------------------------------------------------------------- xdist's rsync


def skip_pytest_copy(config: pytest.Config) -> None:
    """Stop xdist from copying the controller's ``pytest`` and ``_pytest`` packages into the
    working directory of every worker that is not a plain local popen one.

    xdist (3.x; its rsync is deprecated for 4.0) syncs those two directories to each such
    worker's directory -- the project, with ``//chdir=`` -- and puts that directory first on
    the worker's PYTHONPATH. A gate's worker needs pytest-parex installed there, so pytest as
    well: the copy only litters the project (``ruff check .`` would lint it) and shadows the
    installed pytest in the checks' own processes. The roots are ``NodeManager.roots``
    (computed when it is made, read when each node is set up, after the
    ``pytest_xdist_setupnodes`` hook this is called from); the user's ``--rsyncdir`` and
    ``rsyncdirs`` stay.
    """
    import _pytest

    session = config.pluginmanager.get_plugin("dsession")
    manager = getattr(session, "nodemanager", None)
    roots = getattr(manager, "roots", None)
    if manager is None or not isinstance(roots, list):
        return
    ours = {Path(pytest.__file__).resolve().parent, Path(_pytest.__file__).resolve().parent}
    manager.roots = [root for root in roots if Path(root).resolve() not in ours]
