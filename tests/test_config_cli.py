"""End to end: a bad [tool.parex] is one clean usage error (exit 4), never a traceback."""

from __future__ import annotations

import os

import pytest

CHECK = '[tool.parex.checks.lint]\nrun = "ruff check ."\n'

# (id, pyproject.toml text, the key path in the message, the bad value as shown)
BAD_CONFIGS = [
    ("unknown-global-key", '[tool.parex]\ncolour = "red"\n' + CHECK, "[tool.parex]", '"colour"'),
    (
        "unknown-check-key",
        '[tool.parex.checks.lint]\nrun = "x"\ncomand = "y"\n',
        "[tool.parex.checks.lint]",
        '"comand"',
    ),
    ("timeout-string", '[tool.parex]\ntimeout = "soon"\n' + CHECK, "[tool.parex]", '"soon"'),
    ("max-parallel-zero", "[tool.parex]\nmax-parallel = 0\n" + CHECK, "[tool.parex]", "got 0"),
    ("retries-negative", "[tool.parex]\nretries = -1\n" + CHECK, "[tool.parex]", "got -1"),
    ("shell-string", CHECK + 'shell = "yes"\n', "[tool.parex.checks.lint]", '"yes"'),
    ("env-not-a-table", CHECK + 'env = "A=1"\n', "[tool.parex.checks.lint]", '"A=1"'),
    (
        "env-value-not-a-string",
        CHECK + "env = { DEBUG = 1 }\n",
        "[tool.parex.checks.lint.env]",
        "must be a string, got 1",
    ),
    (
        # A quoted TOML key may hold a newline: the message must stay on one line.
        "agent-name-with-newline",
        '[tool.parex.agents]\n"qa\\n" = "many"\n' + CHECK,
        "[tool.parex.agents]",
        "qa",
    ),
    ("needs-not-a-list", CHECK + 'needs = "fmt"\n', "[tool.parex.checks.lint]", '"fmt"'),
    ("unknown-agent", CHECK + 'agent = "qa-bot"\n', "[tool.parex.checks.lint]", '"qa-bot"'),
    ("run-empty-string", '[tool.parex.checks.lint]\nrun = ""\n', "[tool.parex.checks.lint]", '""'),
    ("run-empty-list", "[tool.parex.checks.lint]\nrun = []\n", "[tool.parex.checks.lint]", "[]"),
    (
        "run-and-pytest",
        CHECK + 'pytest = ["-q"]\n',
        "[tool.parex.checks.lint]",
        "both run and pytest",
    ),
    (
        "neither-run-nor-pytest",
        '[tool.parex.checks.lint]\nagent = "debugger"\n',
        "[tool.parex.checks.lint]",
        "needs a command",
    ),
    (
        "duplicate-names-ignoring-case",
        CHECK + '[tool.parex.checks.LINT]\nrun = "y"\n',
        "[tool.parex.checks]",
        '"lint"',
    ),
    ("check-timeout-zero", CHECK + "timeout = 0\n", "[tool.parex.checks.lint]", "got 0"),
    ("gate-word", '[tool.parex]\ngate = "most"\n' + CHECK, "[tool.parex]", '"most"'),
    ("gate-too-many", "[tool.parex]\ngate = 5\n" + CHECK, "[tool.parex]", "got 5"),
    ("on-failure", '[tool.parex]\non-failure = "stop"\n' + CHECK, "[tool.parex]", '"stop"'),
    ("needs-unknown", CHECK + 'needs = ["fmt"]\n', "[tool.parex.checks.lint]", '"fmt"'),
    ("needs-itself", CHECK + 'needs = ["lint"]\n', "[tool.parex.checks.lint]", "lint -> lint"),
    (
        "needs-cycle",
        "".join(
            f'[tool.parex.checks.{a}]\nrun = "x"\nneeds = ["{b}"]\n'
            for a, b in (("a", "b"), ("b", "c"), ("c", "a"))
        ),
        "[tool.parex.checks]",
        "a -> b -> c -> a",
    ),
    (
        "annotations-not-a-table",
        "[tool.parex]\nannotations = 10\n" + CHECK,
        "[tool.parex]",
        "got 10",
    ),
    (
        "annotations-unknown-key",
        "[tool.parex.annotations]\nerror = 5\n" + CHECK,
        "[tool.parex.annotations]",
        '"error"',
    ),
    (
        "annotations-negative",
        "[tool.parex.annotations]\njob = -1\n" + CHECK,
        "[tool.parex.annotations]",
        "job must be an integer >= 0, got -1",
    ),
    # pytest reads pyproject.toml itself first, and reports invalid TOML the same way.
    ("invalid-toml", "[tool.parex]\ntimeout = = 3\n" + CHECK, "(at line 2, column", ""),
    ("parex-not-a-table", '[tool]\nparex = "on"\n', "[tool.parex] must be a table", '"on"'),
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The scratch project must not inherit a gate (or options) from the process running us.
    for var in list(os.environ):
        if var.startswith("PYTEST_PAREX_") or var in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"):
            monkeypatch.delenv(var)


def _assert_usage_error(result: pytest.RunResult, *phrases: str) -> str:
    output = "\n".join([*result.outlines, *result.errlines])
    assert result.ret == 4, output
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    errors = [line for line in result.errlines if "ERROR: " in line]
    assert len(errors) == 1, result.errlines
    assert not any("ERROR: " in line for line in result.outlines), result.outlines
    (line,) = errors
    # Nothing else on stderr: a message continued on a second line would show up here.
    assert [other for other in result.errlines if other.strip()] == [line], result.errlines
    for phrase in phrases:
        assert phrase in line, line
    return line


@pytest.mark.parametrize(
    ("text", "where", "shown"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CONFIGS],
)
def test_bad_config_is_a_usage_error(
    pytester: pytest.Pytester, text: str, where: str, shown: str
) -> None:
    path = pytester.path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    result = pytester.runpytest("--parex", "-p", "no:xdist")
    _assert_usage_error(result, f"ERROR: {path}: ", where, shown)


def test_bad_config_with_xdist_on(pytester: pytest.Pytester) -> None:
    path = pytester.path / "pyproject.toml"
    path.write_text('[tool.parex]\nmax-parallel = 0\n[tool.parex.checks.a]\nrun = "x"\n')
    result = pytester.runpytest_subprocess("--parex")
    _assert_usage_error(result, f"ERROR: {path}: [tool.parex] ", "max-parallel", "got 0")


def test_parex_config_option_names_the_given_file(pytester: pytest.Pytester) -> None:
    path = pytester.path / "gate.toml"
    path.write_text('[tool.parex.checks.lint]\nrun = "x"\nretries = -1\n')
    result = pytester.runpytest("--parex", "-p", "no:xdist", "--parex-config", "gate.toml")
    _assert_usage_error(result, f"{path}: [tool.parex.checks.lint] ", "retries", "got -1")


def test_parex_config_invalid_toml(pytester: pytest.Pytester) -> None:
    # pytest does not read this file itself: the message is parex's own.
    path = pytester.path / "gate.toml"
    path.write_text("[tool.parex]\nmax-parallel = = 2\n")
    result = pytester.runpytest("--parex", "-p", "no:xdist", "--parex-config", str(path))
    _assert_usage_error(result, f"ERROR: {path}: invalid TOML", "line 2")


def test_parex_config_not_utf8(pytester: pytest.Pytester) -> None:
    path = pytester.path / "gate.toml"
    path.write_bytes(b"[tool.parex]\n# caf\xe9\n")
    result = pytester.runpytest("--parex", "-p", "no:xdist", "--parex-config", str(path))
    _assert_usage_error(result, f"ERROR: {path}: is not valid UTF-8")


def test_parex_config_missing(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--parex", "-p", "no:xdist", "--parex-config", "nope.toml")
    _assert_usage_error(result, "--parex-config: nope.toml: no such file")


def test_parex_only_unknown_check(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(
        '[tool.parex.checks.lint]\nrun = "x"\n[tool.parex.checks.types]\nrun = "y"\n'
    )
    result = pytester.runpytest("--parex", "-p", "no:xdist", "--parex-only", "nosuch")
    _assert_usage_error(result, "--parex-only", '"nosuch"', "known checks: lint, types")


def test_parex_skip_unknown_check(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(CHECK)
    result = pytester.runpytest("--parex", "-p", "no:xdist", "--parex-skip", "lint,typo")
    _assert_usage_error(result, "--parex-skip", '"typo"', "known checks: lint")


def test_pyproject_without_tool_parex(pytester: pytest.Pytester) -> None:
    # No Python files either, so there is no default gate to fall back on.
    path = pytester.path / "pyproject.toml"
    path.write_text('[project]\nname = "demo"\n')
    result = pytester.runpytest("--parex", "-p", "no:xdist")
    _assert_usage_error(result, str(path), "no [tool.parex] table")


def test_no_pyproject_at_all(pytester: pytest.Pytester) -> None:
    # An empty directory: no config, and nothing a default gate could check either.
    result = pytester.runpytest("--parex", "-p", "no:xdist")
    _assert_usage_error(result, f"ERROR: {pytester.path / 'pyproject.toml'}: ", "[tool.parex]")


def test_bad_environment_override(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(CHECK)
    monkeypatch.setenv("PYTEST_PAREX_MAX_PARALLEL", "lots")
    result = pytester.runpytest("--parex", "-p", "no:xdist")
    _assert_usage_error(result, "PYTEST_PAREX_MAX_PARALLEL", "'lots'")


@pytest.mark.parametrize("value", ["errors=many", "error=3", "10"])
def test_bad_annotation_limits_on_the_command_line(pytester: pytest.Pytester, value: str) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(CHECK)
    result = pytester.runpytest("--parex", "-p", "no:xdist", f"--parex-annotations={value}")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*--parex-annotations: expected KEY=N pairs (errors, warnings, notices, job) or off*"]
    )


def test_bad_annotation_limits_in_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(CHECK)
    monkeypatch.setenv("PYTEST_PAREX_ANNOTATIONS", "job=lots")
    result = pytester.runpytest("--parex", "-p", "no:xdist")
    _assert_usage_error(result, "PYTEST_PAREX_ANNOTATIONS: expected KEY=N pairs", "'job=lots'")


def test_without_parex_the_config_is_not_read(pytester: pytest.Pytester) -> None:
    # Control: the same bad table is harmless when the gate is not asked for.
    pytester.path.joinpath("pyproject.toml").write_text('[tool.parex]\ntimeout = "soon"\n')
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("-p", "no:xdist")
    assert result.ret == 0
    result.assert_outcomes(passed=1)
