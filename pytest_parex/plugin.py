"""The pytest11 entry point of pytest-parex.

It is imported by every pytest run where the package is installed, so it stays cheap: the
options, the hook specs, and -- only when ``--parex`` or ``--parex-show-config`` is given --
the gate itself (:mod:`pytest_parex.gate`).
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_parex import compat, options

# The gate's own modules load as plain modules, not rewritten for asserts (see compat).
compat.leave_unrewritten("pytest_parex")


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_parex import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    # A tryfirst wrapper runs before every plain implementation, so pytest-cov (a plain
    # tryfirst one) and pytest's own conftest loading already see the gate's arguments, not the
    # tests' addopts, and load no test conftest; see pytest_parex.testplugins.
    if "--parex" not in early_config.invocation_params.args:  # cheap: runs in every pytest
        return (yield)
    from pytest_parex import testplugins

    if not testplugins.set_aside(early_config, parser, args):
        return (yield)
    early_config.stash[testplugins.PARSER] = parser
    undo = testplugins.leave_conftests(early_config)
    try:
        return (yield)
    finally:
        undo()
        testplugins.accept_ini_keys(early_config, parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("parex_show_config"):
        return None
    from pytest_parex import gate

    return gate.show_config(config)


# Not tryfirst: the gate reads pytest's cache (remembered durations decide how many workers to
# start), which the cacheprovider sets up in its own tryfirst pytest_configure. xdist reads
# the worker options the gate sets in its trylast one.
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "parex: a check of the pytest-parex gate")
    if config.getoption("parex"):
        from pytest_parex import gate

        gate.configure(config)
