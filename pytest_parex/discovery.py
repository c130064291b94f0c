"""The zero-config gate: what ``pytest --parex`` runs in a project without ``[tool.parex]``,
and TOML output of a ``[tool.parex]`` table (``--parex-show-config``)."""

from __future__ import annotations

import ast
import configparser
import fnmatch
import importlib.util
import os
import shlex
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_parex.config import ConfigError, read_document
from pytest_parex.toolconfig import PYTEST_FILES

# Directories never searched for tests: virtualenvs, caches, build output, VCS data.
_PRUNE = {
    ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "env", "node_modules", "build",
    "dist", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".parex", "site-packages",
}  # fmt: skip
_MAX_FILES = 5000
"""Stop looking after this many Python files: a default must be cheap to build."""
PYTHON_SOURCES = ["**/*.py", "**/*.pyi"]
"""What mypy reads: the result cache reruns it when a Python file changes (the tools' config
files -- pyproject.toml, mypy.ini, setup.cfg... -- are inputs of every check with reads). The
ruff checks and the tests check have none: every file of the project is their input (ruff
checks notebooks too, and what its include settings name)."""


@dataclass(frozen=True)
class Discovery:
    """A default ``[tool.parex]`` table and what was left out, with reasons."""

    table: dict[str, Any]
    chosen: tuple[str, ...]
    skipped: tuple[str, ...]

    def header(self, config_name: str) -> str:
        chosen = ", ".join(self.chosen) or "nothing"
        text = f"no [tool.parex] in {config_name}; default gate: {chosen}"
        if self.skipped:
            text += "; skipped: " + "; ".join(self.skipped)
        return text + " (pytest --parex-show-config prints it as TOML)"


def _installed(tool: str) -> bool:
    bindir = Path(sys.executable).parent
    return bool(
        shutil.which(tool)
        or (bindir / tool).exists()
        or importlib.util.find_spec(tool.replace("-", "_")) is not None
    )


def _python_files(root: Path) -> Iterator[Path]:
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _PRUNE and not d.startswith(".") and "egg-info" not in d
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                count += 1
                if count > _MAX_FILES:
                    return
                yield Path(dirpath) / name


# Directories that hold a project's tests, docs or tooling rather than its package.
_NOT_PACKAGES = frozenset(
    {"tests", "test", "testing", "docs", "doc", "examples", "example", "scripts", "tools"}
)
_BENCH_DIRS = frozenset({"bench", "benchmarks", "benchmark", "benchmarking"})
"""Where projects keep benchmarks; a benchmarks check runs such a directory as a whole."""
# Top-level modules that are project tooling, never the package mypy should check.
_NOT_MODULES = frozenset({"setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py"})
_MYPY_TARGET_KEYS = ("files", "modules", "packages")
_CODSPEED = "pytest_codspeed"


@dataclass(frozen=True)
class PytestSettings:
    """The collection settings of the pytest configuration file a plain ``pytest`` would use."""

    source: str = ""
    """Where they come from ("pyproject.toml [tool.pytest.ini_options]", "tox.ini [pytest]")."""
    testpaths: tuple[str, ...] = ()
    python_files: tuple[str, ...] = ("test_*.py", "*_test.py")
    python_classes: tuple[str, ...] = ("Test",)
    python_functions: tuple[str, ...] = ("test",)


def _words(value: Any) -> tuple[str, ...]:
    """An "args" ini value (a string pytest splits like a shell) or a TOML list."""
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    try:
        return tuple(shlex.split(str(value)))
    except ValueError:
        return tuple(str(value).split())


def _ini_section(path: Path, section: str) -> dict[str, str] | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return dict(parser.items(section)) if parser.has_section(section) else None


def _toml(path: Path) -> dict[str, Any] | None:
    try:
        return read_document(path)
    except ConfigError:
        return None


def pytest_settings(root: Path, pyproject: Mapping[str, Any] | None = None) -> PytestSettings:
    """What pytest reads from ``root``, looking at its files in pytest's own order: the first
    of pytest.toml, .pytest.toml, pytest.ini, .pytest.ini, pyproject.toml, tox.ini, setup.cfg
    that holds pytest settings wins."""
    values: Mapping[str, Any] | None = None
    source = ""
    for name in PYTEST_FILES:
        path = root / name
        if values is not None or not path.is_file():
            continue
        if name == "pyproject.toml":
            doc = pyproject if pyproject is not None else _toml(path)
            table = _table(_table((doc or {}).get("tool")).get("pytest"))
            native = {k: v for k, v in table.items() if k != "ini_options"}
            if native:
                values, source = native, "pyproject.toml [tool.pytest]"
            elif "ini_options" in table:
                values = _table(table["ini_options"])
                source = "pyproject.toml [tool.pytest.ini_options]"
        elif name.endswith(".toml"):  # pytest.toml, .pytest.toml
            values, source = _table((_toml(path) or {}).get("pytest")), f"{name} [pytest]"
        elif name == "tox.ini":
            values, source = _ini_section(path, "pytest"), "tox.ini [pytest]"
        elif name == "setup.cfg":
            values, source = _ini_section(path, "tool:pytest"), "setup.cfg [tool:pytest]"
        else:  # pytest.ini, .pytest.ini: the file is pytest's even without a section
            values, source = _ini_section(path, "pytest") or {}, f"{name} [pytest]"
    if values is None:
        return PytestSettings()
    defaults = PytestSettings()
    return PytestSettings(
        source,
        _words(values.get("testpaths", "")),
        _words(values["python_files"]) if "python_files" in values else defaults.python_files,
        _words(values["python_classes"]) if "python_classes" in values else defaults.python_classes,
        _words(values["python_functions"])
        if "python_functions" in values
        else defaults.python_functions,
    )


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _test_roots(root: Path, settings: PytestSettings) -> list[Path]:
    """What a plain ``pytest`` in ``root`` collects from: its testpaths (globbed, as pytest
    does), or ``root`` itself when there are none or none of them exists."""
    found: list[Path] = []
    for entry in settings.testpaths:
        if any(ch in entry for ch in "*?["):
            found += sorted(p for p in root.glob(entry) if p.exists())
        elif (root / entry).exists():
            found.append(root / entry)
    return found or [root]


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _name_matches(name: str, patterns: Sequence[str]) -> bool:
    """pytest's ``python_functions``/``python_classes``: a prefix, or a glob."""
    return any(
        fnmatch.fnmatch(name, p) if any(ch in p for ch in "*?[") else name.startswith(p)
        for p in patterns
    )


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."


# --------------------------------------------------------------------------- benchmarks


@dataclass(frozen=True)
class _BenchScan:
    """What the syntax tree of one Python file says about benchmarks."""

    fixture_tests: int = 0
    """Test functions that take a ``benchmark`` parameter."""
    marker: bool = False
    """``pytest.mark.benchmark`` appears (pytest-codspeed's marker; pytest-benchmark has one too,
    but without the fixture it measures nothing)."""
    codspeed: bool = False
    """The file imports pytest_codspeed: its ``benchmark`` fixture is codspeed's."""
    defines_fixture: bool = False
    """The file defines a function named ``benchmark`` that does not wrap pytest-benchmark's
    (a conftest's own stand-in fixture)."""


def _takes_benchmark(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = node.args
    return any(a.arg == "benchmark" for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))


def _scan_benchmarks(path: Path, settings: PytestSettings) -> _BenchScan:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return _BenchScan()
    if "benchmark" not in text:  # cheap: most files never say the word
        return _BenchScan()
    try:
        tree = ast.parse(text, str(path))
    except (SyntaxError, ValueError):
        return _BenchScan()
    tests = 0
    functions = ast.FunctionDef, ast.AsyncFunctionDef
    for node in tree.body:
        if isinstance(node, functions):
            tests += _name_matches(node.name, settings.python_functions) and _takes_benchmark(node)
        elif isinstance(node, ast.ClassDef) and _name_matches(node.name, settings.python_classes):
            tests += sum(
                1
                for item in node.body
                if isinstance(item, functions)
                and _name_matches(item.name, settings.python_functions)
                and _takes_benchmark(item)
            )
    marker = codspeed = False
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Attribute) and sub.attr == "benchmark":
            value = sub.value
            marker = marker or (isinstance(value, ast.Attribute) and value.attr == "mark")
        elif isinstance(sub, ast.Import):
            codspeed = codspeed or any(a.name.partition(".")[0] == _CODSPEED for a in sub.names)
        elif isinstance(sub, ast.ImportFrom):
            codspeed = codspeed or (sub.module or "").partition(".")[0] == _CODSPEED
    # A `benchmark` fixture that itself takes `benchmark` wraps pytest-benchmark's: not a stand-in.
    defines = any(
        isinstance(n, functions) and n.name == "benchmark" and not _takes_benchmark(n)
        for n in tree.body
    )
    return _BenchScan(tests, marker, codspeed, defines)


@dataclass(frozen=True)
class _Benchmarks:
    paths: tuple[str, ...] = ()
    """What ``pytest --benchmark-only`` is given: benchmark directories whole, else files."""
    in_tests: bool = False
    """Some of them are collected by the plain ``pytest`` of the tests check too."""
    tests: int = 0
    why_not: str = ""
    """Why there are none."""


def _find_benchmarks(
    root: Path, files: Sequence[Path], settings: PytestSettings, test_roots: Sequence[Path]
) -> _Benchmarks:
    scans = {f: _scan_benchmarks(f, settings) for f in files}
    # A conftest.py that defines its own `benchmark` (a stand-in for when pytest-benchmark is
    # absent, or another tool's) shadows the plugin's fixture for every test below it.
    own = [f.parent for f, s in scans.items() if s.defines_fixture and f.name == "conftest.py"]
    chosen: list[Path] = []
    count = 0
    codspeed: list[str] = []
    shadowed: list[str] = []
    markers: list[str] = []
    for path, scan in scans.items():
        if scan.fixture_tests and scan.codspeed:
            codspeed.append(_rel(path, root))
        elif scan.fixture_tests and _under(path, own):
            shadowed.append(_rel(path, root))
        elif scan.fixture_tests:
            chosen.append(path)
            count += scan.fixture_tests
        elif scan.marker:
            markers.append(_rel(path, root))
    if not chosen:
        if codspeed:
            why = f"{_few(codspeed)} use pytest-codspeed's benchmark fixture"
        elif shadowed:
            why = f"{_few(shadowed)} use a benchmark fixture the project defines itself"
        elif markers:
            why = (
                f"{_few(markers)} mark tests with pytest.mark.benchmark (pytest-codspeed "
                "style) but no test takes pytest-benchmark's benchmark fixture"
            )
        else:
            why = "no test takes pytest-benchmark's benchmark fixture"
        return _Benchmarks(why_not=why)
    paths: list[str] = []
    in_tests = False
    for path in chosen:
        collected = _matches(path.name, settings.python_files)
        in_tests = in_tests or (collected and _under(path, test_roots))
        # Run a benchmark directory as a whole, as its README would say; a file pytest would
        # not collect from its directory (benchmark.py) is named itself.
        top = next((p for p in path.relative_to(root).parents if p.name in _BENCH_DIRS), None)
        target = _rel(root / top, root) if top is not None and collected else _rel(path, root)
        if target not in paths:
            paths.append(target)
    return _Benchmarks(tuple(sorted(paths)), in_tests, count)


def _few(items: Sequence[str], limit: int = 2) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --------------------------------------------------------------------------------- mypy


@dataclass(frozen=True)
class _Mypy:
    config: str = ""
    """Where mypy's settings are ("[tool.mypy]", "mypy.ini", "setup.cfg [mypy]"); "" for none."""
    targets: tuple[str, ...] = ()
    """What mypy is given on its command line; () when its configuration names them."""
    why: str = ""


def _mypy_config(root: Path, tool: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """mypy's own order: mypy.ini, .mypy.ini, pyproject.toml, setup.cfg (first one that is
    there; pyproject.toml and setup.cfg only with a mypy section)."""
    for name in ("mypy.ini", ".mypy.ini"):
        if (root / name).is_file():
            return name, _ini_section(root / name, "mypy") or {}
    if isinstance(tool.get("mypy"), dict):
        return "[tool.mypy]", tool["mypy"]
    if (root / "setup.cfg").is_file():
        section = _ini_section(root / "setup.cfg", "mypy")
        if section is not None:
            return "setup.cfg [mypy]", section
    return None


def _packages(root: Path, pyproject: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    """The project's importable code: packages under ``src/`` (src layout), else top-level
    packages that are not tests or docs, else top-level modules."""
    src = root / "src"
    if src.is_dir():
        found = sorted(
            _rel(p, root)
            for p in src.iterdir()
            if (p.is_dir() and (p / "__init__.py").is_file()) or (p.is_file() and p.suffix == ".py")
        )
        if found:
            return tuple(found), "src layout"
    flat = sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir()
        and (p / "__init__.py").is_file()
        and p.name not in _NOT_PACKAGES | _BENCH_DIRS
        and not p.name.startswith((".", "_"))
    )
    project = _table(pyproject.get("project")).get("name")
    if isinstance(project, str):
        # The distribution's own package, when there is one by that name, and nothing else.
        named = project.lower().replace("-", "_").replace(".", "_")
        if named in flat:
            return (named,), "the package of [project] name"
    if flat:
        return tuple(flat), "top-level packages"
    modules = sorted(
        p.name
        for p in root.iterdir()
        if p.is_file()
        and p.suffix == ".py"
        and p.name not in _NOT_MODULES
        and not _matches(p.name, ("test_*.py", "*_test.py"))
    )
    return tuple(modules), "top-level modules"


def _choose_mypy(root: Path, tool: Mapping[str, Any], pyproject: Mapping[str, Any]) -> _Mypy:
    found = _mypy_config(root, tool)
    if found is None:
        return _Mypy()
    where, settings = found
    for key in _MYPY_TARGET_KEYS:
        if settings.get(key):
            # mypy reads them itself: a bare `mypy` is what the project runs.
            value = settings[key]
            named = ", ".join(value) if isinstance(value, list) else str(value)
            return _Mypy(where, (), f"{key} = {' '.join(named.split())} in {where}")
    targets, how = _packages(root, pyproject)
    if targets:
        return _Mypy(where, targets, f"no files in {where}, {how}")
    return _Mypy(where, (".",), f"no files in {where} and no package found")


def discover(root: Path, pyproject: Mapping[str, Any] | None = None) -> Discovery:
    """Look at ``root`` and build the gate a careful user would write first.

    Every check is the command the project itself would run, so that its verdict in the gate
    is the verdict of that command typed by hand; the header says what was chosen and why.
    """
    document = pyproject or {}
    tool = _table(document.get("tool"))
    checks: dict[str, dict[str, Any]] = {}
    chosen: list[str] = []
    skipped: list[str] = []
    files = list(_python_files(root))
    settings = pytest_settings(root, pyproject)
    test_roots = _test_roots(root, settings)
    tests = [f for f in files if _matches(f.name, settings.python_files) and _under(f, test_roots)]

    ruff_configured = "ruff" in tool or any(
        (root / name).is_file() for name in ("ruff.toml", ".ruff.toml")
    )
    hooks_note = _pre_commit(root)
    if hooks_note is None:
        checks_table: dict[str, Any] = {"pre-commit": True}
        chosen.append(
            "the hooks of .pre-commit-config.yaml as the reviews (listed below; instead of "
            "ruff from the installed tools)"
        )
    else:
        checks_table = {}
        if hooks_note:
            skipped.append(hooks_note)
    if checks_table:
        pass
    elif not files:
        skipped.append("lint (no Python files)")
    elif _installed("ruff"):
        # No reads: ruff also checks notebooks and whatever its include/extend-include and
        # nested configurations name, so every file of the project is a lint input.
        checks["lint"] = {"kind": "review", "tool": "ruff"}
        chosen.append("lint (ruff check" + (", configured)" if ruff_configured else ")"))
        fmt = _table(tool.get("ruff")).get("format")
        if fmt is not None:
            checks["format"] = {"kind": "review", "tool": "ruff-format", "agent": "refactorer"}
            chosen.append("format (ruff format --check)")
    else:
        skipped.append("lint (ruff is not installed)")

    mypy = _choose_mypy(root, tool, document)
    if not mypy.config:
        skipped.append("types (mypy is not configured)")
    elif not _installed("mypy"):
        skipped.append(f"types (mypy is configured in {mypy.config} but not installed)")
    else:
        checks["types"] = {
            "kind": "review",
            "run": ["mypy", *mypy.targets],
            "agent": "debugger",
            "reads": PYTHON_SOURCES,
        }
        on = f" on {', '.join(mypy.targets)}" if mypy.targets else ""
        chosen.append(f"types (mypy{on}: {mypy.why})")

    bench = _find_benchmarks(root, files, settings, test_roots)
    has_benchmark = importlib.util.find_spec("pytest_benchmark") is not None
    if tests:
        # pytest-benchmark tests among the tests run once each, untimed: timing is the
        # benchmarks check's job, alone on the CPU.
        disable = bench.in_tests and has_benchmark
        args = ["--benchmark-disable"] if disable else []
        checks["tests"] = {"kind": "tests", "pytest": args}
        count = f"{len(tests)} test file{'s' if len(tests) != 1 else ''}"
        where = (
            f" in {', '.join(settings.testpaths)}, testpaths in {settings.source}"
            if settings.testpaths
            else ", no testpaths"
        )
        why = count + where + (", pytest-benchmark tests among them" if disable else "")
        chosen.append(f"tests ({' '.join(['pytest', *args])}: {why})")
    else:
        pattern = " or ".join(settings.python_files)
        where = f" in testpaths {', '.join(settings.testpaths)}" if settings.testpaths else ""
        skipped.append(f"tests (no {pattern} files{where})")

    if not bench.paths:
        skipped.append(f"benchmarks ({bench.why_not})")
    elif not has_benchmark:
        skipped.append(
            f"benchmarks ({_few(bench.paths)} use the benchmark fixture but pytest-benchmark "
            "is not installed)"
        )
    else:
        args = ["--benchmark-only", *bench.paths]
        checks["benchmarks"] = {"kind": "benchmarks", "pytest": args}
        noun = "test takes" if bench.tests == 1 else "tests take"
        chosen.append(
            f"benchmarks ({' '.join(['pytest', *args])}: {bench.tests} {noun} "
            "pytest-benchmark's benchmark fixture; run alone)"
        )
    skipped.append('leaks (opt-in: kind = "leaks")')
    return Discovery({**checks_table, "checks": checks}, tuple(chosen), tuple(skipped))


def _pre_commit(root: Path) -> str | None:
    """None when the project's pre-commit hooks can be its reviews; else why not ("" when it
    has no ``.pre-commit-config.yaml``)."""
    if not (root / ".pre-commit-config.yaml").is_file():
        return ""
    if importlib.util.find_spec("yaml") is None or importlib.util.find_spec("identify") is None:
        return (
            "pre-commit hooks (.pre-commit-config.yaml needs pytest-parex[pre-commit]: "
            "PyYAML and identify)"
        )
    if not (root / ".git").exists():
        return "pre-commit hooks (not a git work tree's top: pre-commit lists files with git)"
    return None


def load_document(path: Path) -> dict[str, Any] | None:
    """The whole TOML document at ``path``, or None when it does not exist or is invalid."""
    if not path.is_file():
        return None
    try:
        return read_document(path)
    except ConfigError:
        return None
