"""The zero-config gate's discovery rules (``pytest_parex.discovery``), on scratch trees.

Each rule is one the corpus (benchmarks/corpus.py) found real projects need: a default check
must be the command the project itself would run, so that the gate's verdict is that
command's verdict.
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import Project

from pytest_parex import discovery
from pytest_parex.config import read_document

needs_benchmark = pytest.mark.skipif(
    importlib.util.find_spec("pytest_benchmark") is None, reason="pytest-benchmark is needed"
)


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _discover(root: Path) -> discovery.Discovery:
    pyproject = root / "pyproject.toml"
    return discovery.discover(root, read_document(pyproject) if pyproject.is_file() else None)


def _checks(found: discovery.Discovery) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = found.table["checks"]
    return checks


def _line(found: discovery.Discovery, name: str) -> str:
    """The header phrase about check ``name`` (chosen or skipped)."""
    phrases = [p for p in (*found.chosen, *found.skipped) if p.startswith(name + " (")]
    assert len(phrases) == 1, (found.chosen, found.skipped)
    return phrases[0]


# ------------------------------------------------------------------------------ benchmarks

CODSPEED_MODULE = """\
    import pytest

    pytestmark = pytest.mark.benchmark()

    def test_fast():
        assert sum(range(10)) == 45

    @pytest.mark.benchmark
    def test_marked():
        pass
"""

FIXTURE_MODULE = """\
    def test_sum(benchmark):
        assert benchmark(sum, range(10)) == 45
"""


@needs_benchmark
def test_codspeed_markers_are_not_pytest_benchmark(tmp_path: Path) -> None:
    # pytest-codspeed marks benchmarks with `benchmark`; pytest-benchmark would find none of
    # them and `--benchmark-only` would fail where the project's own run passes.
    _tree(
        tmp_path,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
            "tests/test_a.py": "def test_a():\n    pass\n",
            "bench/test_benchmarks.py": CODSPEED_MODULE,
        },
    )
    found = _discover(tmp_path)
    assert "benchmarks" not in _checks(found)
    assert _checks(found)["tests"]["pytest"] == []
    assert "bench/test_benchmarks.py mark tests with pytest.mark.benchmark" in _line(
        found, "benchmarks"
    )


@needs_benchmark
def test_benchmark_fixture_outside_testpaths_runs_where_it_is(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
            "tests/test_a.py": "def test_a():\n    pass\n",
            "bench/test_speed.py": FIXTURE_MODULE,
            "bench/test_more.py": """\
                class TestSpeed:
                    def test_x(self, benchmark):
                        pass
            """,
        },
    )
    found = _discover(tmp_path)
    assert _checks(found)["benchmarks"] == {
        "kind": "benchmarks",
        "pytest": ["--benchmark-only", "bench"],
    }
    # The plain `pytest` of the tests check never collects bench/: nothing to disable.
    assert _checks(found)["tests"]["pytest"] == []
    assert _line(found, "tests") == (
        "tests (pytest: 1 test file in tests, "
        "testpaths in pyproject.toml [tool.pytest.ini_options])"
    )
    assert _line(found, "benchmarks") == (
        "benchmarks (pytest --benchmark-only bench: 2 tests take pytest-benchmark's benchmark "
        "fixture; run alone)"
    )


@needs_benchmark
def test_benchmark_fixture_among_the_tests_is_disabled_there(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "tests/test_a.py": "def test_a():\n    pass\n",
            "tests/test_perf.py": FIXTURE_MODULE,
        },
    )
    found = _discover(tmp_path)
    assert _checks(found)["tests"]["pytest"] == ["--benchmark-disable"]
    assert _checks(found)["benchmarks"]["pytest"] == ["--benchmark-only", "tests/test_perf.py"]
    assert _line(found, "tests") == (
        "tests (pytest --benchmark-disable: 2 test files, no testpaths, "
        "pytest-benchmark tests among them)"
    )


@needs_benchmark
def test_a_benchmark_file_pytest_would_not_collect_is_named(tmp_path: Path) -> None:
    # pluggy's layout: testing/benchmark.py, run as `pytest testing/benchmark.py`.
    _tree(
        tmp_path,
        {
            "tox.ini": "[pytest]\ntestpaths = testing\n",
            "testing/test_a.py": "def test_a():\n    pass\n",
            "testing/benchmark.py": FIXTURE_MODULE,
        },
    )
    found = _discover(tmp_path)
    assert _checks(found)["benchmarks"]["pytest"] == ["--benchmark-only", "testing/benchmark.py"]
    assert _checks(found)["tests"]["pytest"] == []


@needs_benchmark
def test_a_conftest_fixture_that_wraps_pytest_benchmark_is_still_pytest_benchmark(
    tmp_path: Path,
) -> None:
    _tree(
        tmp_path,
        {
            "tests/conftest.py": """\
                import pytest

                @pytest.fixture
                def benchmark(benchmark):
                    benchmark.group = "all"
                    return benchmark
            """,
            "tests/test_perf.py": FIXTURE_MODULE,
        },
    )
    assert _checks(_discover(tmp_path))["benchmarks"]["pytest"] == [
        "--benchmark-only",
        "tests/test_perf.py",
    ]


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        pytest.param(
            {
                "tests/test_perf.py": """\
                    from pytest_codspeed import BenchmarkFixture

                    def test_sum(benchmark: BenchmarkFixture):
                        benchmark(sum, range(10))
                """
            },
            "tests/test_perf.py use pytest-codspeed's benchmark fixture",
            id="codspeed-fixture",
        ),
        pytest.param(
            {
                "tests/conftest.py": """\
                    import pytest

                    @pytest.fixture
                    def benchmark():
                        return lambda fn, *args: fn(*args)
                """,
                "tests/test_perf.py": FIXTURE_MODULE,
            },
            "tests/test_perf.py use a benchmark fixture the project defines itself",
            id="own-fixture",
        ),
        pytest.param(
            {
                "tests/test_words.py": """\
                    BENCH = "benchmark(fn), (benchmark, x), f(a, benchmark)"

                    def run_benchmark(benchmark):
                        return benchmark

                    def test_words(benchmark_config):
                        assert run_benchmark(1) == 1
                """
            },
            "no test takes pytest-benchmark's benchmark fixture",
            id="only-the-word",
        ),
    ],
)
def test_what_is_not_pytest_benchmark(tmp_path: Path, files: dict[str, str], reason: str) -> None:
    _tree(tmp_path, {"tests/test_a.py": "def test_a():\n    pass\n", **files})
    found = _discover(tmp_path)
    assert "benchmarks" not in _checks(found)
    assert _checks(found)["tests"]["pytest"] == []
    assert _line(found, "benchmarks") == f"benchmarks ({reason})"


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize(
    ("name", "text", "source"),
    [
        ("pytest.ini", "[pytest]\ntestpaths = testing\n", "pytest.ini [pytest]"),
        (
            "tox.ini",
            "[tox]\nenvlist = py\n[pytest]\ntestpaths =\n    testing\n",
            "tox.ini [pytest]",
        ),
        (
            "setup.cfg",
            "[metadata]\nname = x\n[tool:pytest]\ntestpaths = testing\n",
            "setup.cfg [tool:pytest]",
        ),
        (
            "pyproject.toml",
            '[tool.pytest.ini_options]\ntestpaths = ["testing"]\n',
            "pyproject.toml [tool.pytest.ini_options]",
        ),
        (
            "pyproject.toml",
            '[tool.pytest]\ntestpaths = ["testing"]\n',
            "pyproject.toml [tool.pytest]",
        ),
        (
            "pyproject.toml",
            '[tool.pytest]\nini_options.testpaths = "testing"\n',
            "pyproject.toml [tool.pytest.ini_options]",
        ),
        ("pytest.toml", '[pytest]\ntestpaths = ["testing"]\n', "pytest.toml [pytest]"),
    ],
)
def test_testpaths_from_each_pytest_config(
    tmp_path: Path, name: str, text: str, source: str
) -> None:
    _tree(
        tmp_path,
        {
            name: text,
            "testing/test_a.py": "def test_a():\n    pass\n",
            "testing/test_b.py": "def test_b():\n    pass\n",
            # Outside testpaths: pytest never runs it, the count must not include it.
            "tools/test_helper.py": "def test_h():\n    pass\n",
        },
    )
    found = _discover(tmp_path)
    assert (
        _line(found, "tests") == f"tests (pytest: 2 test files in testing, testpaths in {source})"
    )
    assert _checks(found)["tests"] == {"kind": "tests", "pytest": []}


def test_pytest_ini_wins_over_pyproject(tmp_path: Path) -> None:
    # pytest uses pytest.ini even without a [pytest] section: no testpaths then.
    _tree(
        tmp_path,
        {
            "pytest.ini": "[pytest]\naddopts = -ra\n",
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["testing"]\n',
            "testing/test_a.py": "def test_a():\n    pass\n",
            "other/test_b.py": "def test_b():\n    pass\n",
        },
    )
    assert _line(_discover(tmp_path), "tests") == "tests (pytest: 2 test files, no testpaths)"


def test_python_files_and_testpaths_globs(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "pytest.ini": "[pytest]\ntestpaths = pkg*/checks\npython_files = check_*.py\n",
            "pkg1/checks/check_a.py": "def test_a():\n    pass\n",
            "pkg2/checks/check_b.py": "def test_b():\n    pass\n",
            "pkg2/checks/test_c.py": "def test_c():\n    pass\n",
        },
    )
    assert _line(_discover(tmp_path), "tests") == (
        "tests (pytest: 2 test files in pkg*/checks, testpaths in pytest.ini [pytest])"
    )


# ------------------------------------------------------------------------------ mypy

needs_mypy = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None, reason="mypy is not installed"
)


@needs_mypy
@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("pyproject.toml", '[tool.mypy]\nfiles = ["src", "tools"]\n', "[tool.mypy]"),
        ("mypy.ini", "[mypy]\nfiles = src, tools\n", "mypy.ini"),
        (".mypy.ini", "[mypy]\nfiles = src,\n    tools\n", ".mypy.ini"),
        ("setup.cfg", "[metadata]\nname = x\n[mypy]\nfiles = src, tools\n", "setup.cfg [mypy]"),
    ],
)
def test_mypy_files_from_each_config(tmp_path: Path, name: str, text: str, where: str) -> None:
    _tree(tmp_path, {name: text, "src/pkg/__init__.py": "", "tools/x.py": ""})
    found = _discover(tmp_path)
    # mypy reads `files` itself: the bare command is what the project runs.
    assert _checks(found)["types"]["run"] == ["mypy"]
    assert _line(found, "types") == f"types (mypy: files = src, tools in {where})"


@needs_mypy
def test_mypy_ini_wins_over_pyproject(tmp_path: Path) -> None:
    # mypy reads mypy.ini first and then nothing else: pyproject's files do not apply.
    _tree(
        tmp_path,
        {
            "mypy.ini": "[mypy]\nstrict = True\n",
            "pyproject.toml": '[tool.mypy]\nfiles = ["other"]\n',
            "src/pkg/__init__.py": "",
        },
    )
    found = _discover(tmp_path)
    assert _checks(found)["types"]["run"] == ["mypy", "src/pkg"]
    assert _line(found, "types") == "types (mypy on src/pkg: no files in mypy.ini, src layout)"


@needs_mypy
@pytest.mark.parametrize(
    ("files", "targets", "how"),
    [
        pytest.param(
            {"src/attr/__init__.py": "", "src/attrs/__init__.py": "", "src/notes.txt": ""},
            ["src/attr", "src/attrs"],
            "src layout",
            id="src-layout",
        ),
        pytest.param(
            {"demo_pkg/__init__.py": "", "helpers/__init__.py": "", "tests/__init__.py": ""},
            ["demo_pkg"],
            "the package of [project] name",
            id="flat-named",
        ),
        pytest.param(
            {"mdlib/__init__.py": "", "tests/__init__.py": "", "docs/conf.py": ""},
            ["mdlib"],
            "top-level packages",
            id="flat-other-name",
        ),
        pytest.param(
            {"demo.py": "", "setup.py": "", "conftest.py": "", "test_demo.py": ""},
            ["demo.py"],
            "top-level modules",
            id="single-module",
        ),
    ],
)
def test_mypy_targets_without_files(
    tmp_path: Path, files: dict[str, str], targets: list[str], how: str
) -> None:
    _tree(
        tmp_path,
        {"pyproject.toml": '[project]\nname = "demo-pkg"\n[tool.mypy]\nstrict = true\n', **files},
    )
    found = _discover(tmp_path)
    assert _checks(found)["types"]["run"] == ["mypy", *targets]
    assert _line(found, "types") == (
        f"types (mypy on {', '.join(targets)}: no files in [tool.mypy], {how})"
    )


def test_mypy_is_not_run_unconfigured(tmp_path: Path) -> None:
    _tree(tmp_path, {"src/pkg/__init__.py": "", "setup.cfg": "[flake8]\nmax-line-length = 99\n"})
    found = _discover(tmp_path)
    assert "types" not in _checks(found)
    assert _line(found, "types") == "types (mypy is not configured)"


def test_pytest_settings_read_native_toml_lists(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {"pyproject.toml": '[tool.pytest]\ntestpaths = ["a", "b"]\npython_files = ["t_*.py"]\n'},
    )
    settings = discovery.pytest_settings(tmp_path)
    assert settings == discovery.PytestSettings(
        "pyproject.toml [tool.pytest]", ("a", "b"), ("t_*.py",)
    )


# ------------------------------------------------------------------------------ end to end


@needs_benchmark
def test_codspeed_benchmarks_leave_the_default_gate_green(project: Project) -> None:
    # The case: the gate added a pytest-benchmark check that found no benchmark and
    # failed, while each command the project runs passed.
    _tree(
        project.path,
        {
            "pyproject.toml": (
                '[project]\nname = "x"\nversion = "0"\n'
                '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
                'markers = ["benchmark: codspeed"]\n'
            ),
            "tests/test_a.py": "def test_a():\n    pass\n",
            "bench/test_benchmarks.py": CODSPEED_MODULE,
        },
    )
    result = project.pytester.runpytest_subprocess(
        "--parex", "-p", "no:xdist", "--parex-skip", "lint"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "parex: no [[]tool.parex] in pyproject.toml; default gate: *"
            "tests (pytest: 1 test file in tests, testpaths in pyproject.toml*"
            "benchmarks (bench/test_benchmarks.py mark tests with pytest.mark.benchmark*",
            "tests*test-runner*passed*1 passed*",
        ]
    )
    assert "benchmarks*test-runner" not in result.stdout.str()
