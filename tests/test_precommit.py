"""The pre-commit integration's pure parts: the YAML's validation, hooks -> checks (order,
parts, what is read and written), the native hooks, and one hook's verdict (modified files,
files it was not passed). The differential tests against pre-commit itself are in
``test_precommit_parity.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("yaml")
pytest.importorskip("identify")

from pytest_parex import config as cfg
from pytest_parex.config import Check, ConfigError
from pytest_parex.dispatch import Dispatcher, Run, Skip
from pytest_parex.execute import execute
from pytest_parex.kinds.base import RunContext
from pytest_parex.precommit import build, manifests, native
from pytest_parex.precommit import config as pcc
from pytest_parex.results import Status


def _git_tree(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def _gate(
    root: Path,
    yaml_text: str,
    table: str = "[tool.parex]\npre-commit = true\n",
    remembered: dict[str, float] | None = None,
) -> cfg.ParexConfig:
    (root / ".pre-commit-config.yaml").write_text(yaml_text)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    parsed = cfg.parse(cfg.tomllib.loads(table)["tool"]["parex"], str(root / "pyproject.toml"))
    return build.apply(parsed, root, environ={"PATH": "/usr/bin:/bin"}, remembered=remembered)


# ------------------------------------------------------------------------------ the YAML


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- repo: local\n", "a list; expected a mapping with repos:"),
        ("files: x\n", "missing required key repos"),
        (
            "repos:\n- repo: local\n  hooks:\n  - {id: a, name: a, language: system}\n",
            'repo local, hook "a": missing required key entry',
        ),
        (
            "repos:\n- repo: local\n  hooks:\n  - {id: a, name: a, entry: x, language: cobol}\n",
            'repo local, hook "a": language must be one of',
        ),
        (
            "repos:\n- repo: local\n  hooks:\n  - {id: a, name: a, entry: x, language: system,"
            " files: '(('}\n",
            'hook "a": files "((" is not a valid regex',
        ),
        (
            "repos:\n- repo: local\n  hooks:\n  - {id: a, name: a, entry: x, language: system,"
            " types: [pyhton]}\n",
            'types: type tag "pyhton" is not recognized',
        ),
        (
            "repos:\n- repo: local\n  hooks:\n  - {id: a, name: a, entry: x, language: system,"
            " stages: [later]}\n",
            'stages: unknown stage "later"',
        ),
        (
            "repos:\n- repo: meta\n  hooks:\n  - {id: identity, entry: x}\n",
            "entry cannot be overridden",
        ),
        (
            "repos:\n- repo: https://example.com/r\n  hooks: []\n",
            "repo https://example.com/r: missing required key rev",
        ),
        ("repos: [\n", "invalid YAML"),
        ("exclude: 3\nrepos: []\n", "exclude must be a string, got 3"),
    ],
)
def test_invalid_configs_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / ".pre-commit-config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        pcc.load(path, ".pre-commit-config.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith(".pre-commit-config.yaml")
    assert "\n" not in str(info.value)


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_parex import precommit

    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ConfigError, match=r"pip install 'pytest-parex\[pre-commit\]'"):
        precommit.require(".pre-commit-config.yaml")


# ------------------------------------------------------------------------------ checks

HOOKS = """\
repos:
- repo: local
  hooks:
  - {id: fix-py, name: fix-py, entry: sed -i -e s/a/b/, language: system, types: [python]}
  - {id: read-py, name: read-py, entry: bad, language: pygrep, types: [python]}
  - {id: read-md, name: read-md, entry: bad, language: pygrep, types: [markdown]}
  - {id: lint, name: lint, entry: ruff check, language: system, types: [python]}
  - {id: whole, name: whole, entry: "true", language: system, pass_filenames: false}
  - {id: manual, name: manual, entry: x, language: system, stages: [manual]}
  - {id: none, name: none, entry: x, language: system, files: \\.rs$}
"""


def test_order_keeps_pre_commits_tree_and_lets_readers_overlap(tmp_path: Path) -> None:
    root = _git_tree(tmp_path, {"a.py": "x\n", "b.py": "y\n", "README.md": "r\n"})
    gate = _gate(root, HOOKS)
    by = {c.name: c for c in gate.checks}
    assert list(by) == ["fix-py", "read-py", "read-md", "lint", "whole"]
    # A reader of what the fixer writes comes after it, whatever its verdict.
    assert by["read-py"].after == ("fix-py",) and by["read-py"].needs == ("fix-py",)
    assert by["lint"].after == ("fix-py",)  # ruff check without --fix only reads
    assert by["read-md"].after == ()  # other files: side by side
    assert by["fix-py"].writes == ("a.py", "b.py") and by["fix-py"].reads == ("a.py", "b.py")
    assert by["lint"].writes == () and by["read-md"].reads == ("README.md",)
    # pass_filenames: false reads the whole project (no reads: every file) and, unknown, is
    # assumed to write its files: it comes after everything before it.
    assert by["whole"].reads == () and set(by["whole"].after) == {
        "fix-py",
        "read-py",
        "read-md",
        "lint",
    }
    notes = " ".join(gate.notes)
    assert "no files to check: none" in notes and "not in the pre-commit stage" in notes
    assert "manual" in notes


def test_fail_fast_makes_later_hooks_need_the_earlier(tmp_path: Path) -> None:
    root = _git_tree(tmp_path, {"a.py": "x\n", "b.md": "y\n"})
    gate = _gate(root, "fail_fast: true\n" + HOOKS.replace("  - {id: whole", "  - {id: w2"))
    by = {c.name: c for c in gate.checks}
    assert by["read-md"].needs == ("fix-py", "read-py") and by["read-md"].after == ()


def test_a_long_hook_is_split_as_pre_commit_splits_it(tmp_path: Path) -> None:
    files = {f"m{i:02}.py": "x\n" for i in range(10)}
    root = _git_tree(tmp_path, files)
    text = (
        "repos:\n- repo: local\n  hooks:\n"
        "  - {id: r, name: r, entry: cat, language: system, types: [python]}\n"
        "  - {id: s, name: s, entry: cat, language: system, types: [python],"
        " require_serial: true}\n"
        "  - {id: g, name: g, entry: bad, language: pygrep, types: [python]}\n"
        "  - {id: short, name: short, entry: cat, language: system, types: [python]}\n"
    )
    table = "[tool.parex]\npre-commit = true\n[tool.parex.agents]\npre-commit = 2\n"
    long = {"r": 3.0, "s": 3.0, "g": 3.0, "short[1/2]": 0.2, "short[2/2]": 0.2}
    gate = _gate(root, text, table, remembered=long)
    # Not split: a require_serial hook, pygrep (pre-commit runs it in one process) and a
    # hook whose last run was short.
    assert [c.name for c in gate.checks] == ["r[1/2]", "r[2/2]", "s", "g", "short"]
    assert [len(c.option("files")) for c in gate.checks] == [5, 5, 10, 10, 10]
    assert gate.check("r[1/2]").shard == (1, 2)
    # -k/--parex-only name a split hook whole.
    assert [c.name for c in cfg.select(gate, ["r"], []).checks] == ["r[1/2]", "r[2/2]"]
    # Without durations (a first run) nothing is split.
    assert [c.name for c in _gate(root, text, table).checks] == ["r", "s", "g", "short"]


def test_table_knows_which_hooks_modify() -> None:
    ruff = manifests.known("https://github.com/astral-sh/ruff-pre-commit")
    assert ruff is not None
    assert ruff.modifies["ruff-check"].given(["--fix"]) is True
    assert ruff.modifies["ruff-check"].given([]) is False
    assert ruff.modifies["ruff-format"].given([]) is True
    assert ruff.modifies["ruff-format"].given(["--check"]) is False
    assert manifests.repo_key("git@github.com:PyCQA/flake8.git") == "pycqa/flake8"
    assert manifests.modifies_by_entry(["check-yaml"], []) is False
    assert manifests.modifies_by_entry(["end-of-file-fixer"], []) is True
    assert manifests.modifies_by_entry(["sed", "-i"], []) is None


def test_explicit_table_names_a_hook_that_exists(tmp_path: Path) -> None:
    root = _git_tree(tmp_path, {"a.py": "x\n"})
    table = '[tool.parex.checks.nope]\nkind = "pre-commit"\n'
    with pytest.raises(
        ConfigError, match=r'hook "nope" is not a hook of \.pre-commit-config\.yaml'
    ):
        _gate(root, HOOKS, "[tool.parex]\n" + table)


# ------------------------------------------------------------------------------ after


def test_after_orders_without_asking_for_a_pass() -> None:
    checks = (
        Check(name="a", agent="x", argv=("a",)),
        Check(name="b", agent="x", argv=("b",), needs=("a",), after=("a",)),
        Check(name="c", agent="x", argv=("c",), needs=("a",)),
    )
    config = cfg.ParexConfig(source="t", checks=checks, agents=(("x", 3),))
    d = Dispatcher(config)
    d.add_worker("w0")
    d.add_worker("w1")
    assert d.assign() == [Run("w0", "a")]
    d.finish("a", Status.FAILED)
    actions = d.assign()
    assert Skip("c", Status.SKIPPED, "needs a, which failed") in actions
    assert any(isinstance(x, Run) and x.name == "b" for x in actions)


def test_after_key_in_config() -> None:
    parsed = cfg.parse(
        {"checks": {"a": {"run": "x"}, "b": {"run": "y", "after": ["a"]}}}, "pyproject.toml"
    )
    b = parsed.check("b")
    assert b.needs == ("a",) and b.after == ("a",)
    assert cfg.drop_missing_needs(parsed, ["b"]).check("b").after == ()


# ------------------------------------------------------------------------------ native


def test_native_pygrep(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    a = tmp_path / "a.py"
    a.write_text("ok\nHas Bad\nfine\n")
    b = tmp_path / "b.py"
    b.write_text("nothing\n")
    assert native.main(["pygrep", "bad", str(a), str(b)]) == 0
    assert native.main(["pygrep", "-i", "bad", str(a), str(b)]) == 1
    assert capsysbinary.readouterr().out == f"{a}:2:Has Bad\n".encode()
    assert native.main(["pygrep", "--multiline", "ok\nHas", str(a)]) == 1
    assert capsysbinary.readouterr().out == f"{a}:1:ok\nHas\n".encode()
    assert native.main(["pygrep", "--negate", "nothing", str(a), str(b)]) == 1
    assert capsysbinary.readouterr().out == f"{a}\n".encode()
    assert native.main(["pygrep", "--bogus", "x"]) == 2
    assert native.main(["fail", "no such files", "x.orig"]) == 1
    assert native.main(["report", "1", "x does not apply"]) == 1


# ------------------------------------------------------------------------------ one hook


def _context(root: Path) -> RunContext:
    return RunContext(
        rootdir=root,
        log_dir=root / ".parex" / "logs",
        state_dir=root / ".parex" / "run",
        config_path=str(root / "pyproject.toml"),
    )


def test_a_hook_that_modified_its_files_fails_with_a_diffstat(tmp_path: Path) -> None:
    root = _git_tree(tmp_path, {"a.txt": "x  \ny\n", "b.txt": "clean\n", "c.md": "other\n"})
    text = (
        "repos:\n- repo: local\n  hooks:\n"
        "  - {id: strip, name: strip, entry: sed -i -e 's/ *$//', language: system,"
        " files: \\.txt$}\n"
    )
    gate = _gate(root, text)
    (check,) = gate.checks
    result = execute(check, _context(root))
    assert result.status is Status.FAILED
    assert result.detail == "files were modified by this hook: a.txt"
    assert "a.txt: +1 -1" in result.summary
    again = execute(check, _context(root))
    assert again.status is Status.PASSED  # nothing left to fix


SNEAKY = (
    "repos:\n- repo: local\n  hooks:\n"
    "  - {id: sneaky, name: sneaky, entry: sh -c 'echo changed >> other.md' --,"
    " language: system, files: \\.txt$}\n"
)
"""A hook that writes a file it is not passed."""


def test_a_hook_that_changed_a_file_it_was_not_passed_is_an_error(tmp_path: Path) -> None:
    root = _git_tree(tmp_path, {"a.txt": "x\n", "other.md": "o\n"})
    (check,) = _gate(root, SNEAKY).checks
    result = execute(check, _context(root))
    assert result.status is Status.ERROR
    assert result.detail == "changed files it was not passed: other.md"


def test_a_file_another_running_hook_claims_is_not_blamed(tmp_path: Path) -> None:
    from pytest_parex.kinds import precommit as kind

    root = _git_tree(tmp_path, {"a.txt": "x\n", "other.md": "o\n"})
    (check,) = _gate(root, SNEAKY).checks
    ctx = _context(root)
    # A hook that may write other.md runs meanwhile (its claim has no end yet).
    kind._write_claim(ctx.state_dir / kind.CLAIMS / "md-fixer.json", ["other.md"], 0, None)
    assert execute(check, ctx).status is Status.PASSED


def test_changed_files_go_to_file_scoped_reviews_only(tmp_path: Path) -> None:
    root = _git_tree(tmp_path, {"a.py": "x\n", "b.py": "y\n", "README.md": "r\n"})
    subprocess.run(
        ["git", "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "i"],
        cwd=root,
        check=True,
    )
    (root / "b.py").write_text("y = 2\n")
    (root / "README.md").write_text("changed\n")
    parsed = cfg.parse(
        {
            "checks": {
                "lint": {"kind": "review", "tool": "ruff"},
                "types": {"kind": "review", "run": "mypy ."},
            }
        },
        "pyproject.toml",
    )
    gate = build.apply(parsed, root, changed="")
    assert gate.check("lint").argv == ("ruff", "check", "b.py")
    assert gate.check("lint").option("changed-files") == 1
    assert gate.check("types").argv == ("mypy", ".")  # whole-program: as usual
    assert "--parex-changed (staged and unstaged changes against HEAD): lint: 1 changed file" in (
        gate.notes
    )


def test_checks_that_read_what_a_hook_modifies_start_after_it(tmp_path: Path) -> None:
    root = _git_tree(tmp_path, {"a.py": "x\n", "docs/i.md": "d\n"})
    table = (
        "[tool.parex]\npre-commit = true\n"
        '[tool.parex.checks.tests]\npytest = ["-q"]\n'
        '[tool.parex.checks.docs]\nrun = "true"\nreads = ["docs/**"]\n'
        '[tool.parex.checks.types]\nrun = "true"\nreads = ["**/*.py"]\n'
    )
    gate = _gate(root, HOOKS, table)
    # fix-py may modify a.py: a check reading everything (no reads) or *.py waits for it,
    # whatever its verdict; one reading other files does not; a hook that only reads
    # (read-md, lint) holds nobody back.
    assert gate.check("tests").after == ("fix-py", "whole")
    assert gate.check("types").after == ("fix-py", "whole")
    assert gate.check("docs").after == ("whole",)
