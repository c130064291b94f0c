"""Where a remote hook's manifest comes from, and what can run it here.

A hook from ``repo: https://...`` is defined by the repository's ``.pre-commit-hooks.yaml`` at
``rev``. This machine has no network at gate time, so the manifest is read from pre-commit's
store (``$PRE_COMMIT_HOME``, ``~/.cache/pre-commit``: a clone per repo and rev) or prek's
(``$PREK_HOME``, ``~/.cache/prek``), or else taken from :data:`TABLE`, the manifests of the
most used hook repositories with what the gate must know beyond them: which Python
distribution is the tool (to compare its installed version with ``rev``) and whether the
hook modifies files (:class:`Modifies`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_parex.config import ConfigError
from pytest_parex.precommit.config import manifest_hooks, validate_hook

MANIFEST_FILE = ".pre-commit-hooks.yaml"


@dataclass(frozen=True)
class Modifies:
    """Whether a hook writes the files it is passed, by its arguments: ``always``, or only
    ``when`` one of these arguments is given, or ``unless`` one of these is given. A hook the
    gate does not know is assumed to modify what it is passed."""

    always: bool = False
    when: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()

    def given(self, args: Sequence[str]) -> bool:
        def has(flags: tuple[str, ...]) -> bool:
            return any(a == f or a.startswith(f + "=") for a in args for f in flags)

        if self.when:
            return has(self.when)
        if self.unless:
            return not has(self.unless)
        return self.always


NEVER = Modifies()
ALWAYS = Modifies(always=True)


@dataclass(frozen=True)
class Known:
    """A repository of :data:`TABLE`."""

    distribution: str
    """The PyPI distribution whose version ``rev`` pins ("" for none)."""
    hooks: Mapping[str, Mapping[str, Any]]
    modifies: Mapping[str, Modifies]


def _py(entry: str, **keys: Any) -> dict[str, Any]:
    return {
        "name": keys.pop("name", entry.split()[0]),
        "entry": entry,
        "language": "python",
        **keys,
    }


_RUFF = {"types_or": ["python", "pyi", "jupyter"], "require_serial": True}
_PCH_CHECKS = {
    "check-added-large-files": _py(
        "check-added-large-files", stages=["pre-commit", "pre-push", "manual"]
    ),
    "check-ast": _py("check-ast", types=["python"]),
    "check-builtin-literals": _py("check-builtin-literals", types=["python"]),
    "check-case-conflict": _py("check-case-conflict"),
    "check-docstring-first": _py("check-docstring-first", types=["python"]),
    "check-executables-have-shebangs": _py(
        "check-executables-have-shebangs",
        types=["text", "executable"],
        stages=["pre-commit", "pre-push", "manual"],
    ),
    "check-illegal-windows-names": {
        "name": "check illegal windows names",
        "entry": "Illegal Windows filenames detected",
        "language": "fail",
        "files": r"(?i)((^|/)(CON|PRN|AUX|NUL|COM[\d¹²³]|LPT[\d¹²³])(\.|/|$)|[<>:\"\\|?*\x00-\x1F]"
        r"|/[^/]*[\.\s]/|[^/]*[\.\s]$)",
    },
    "check-json": _py("check-json", types=["json"]),
    "check-shebang-scripts-are-executable": _py(
        "check-shebang-scripts-are-executable",
        types=["text"],
        stages=["pre-commit", "pre-push", "manual"],
    ),
    "check-merge-conflict": _py("check-merge-conflict", types=["text"]),
    "check-symlinks": _py("check-symlinks", types=["symlink"]),
    "check-toml": _py("check-toml", types=["toml"]),
    "check-vcs-permalinks": _py("check-vcs-permalinks", types=["text"]),
    "check-xml": _py("check-xml", types=["xml"]),
    "check-yaml": _py("check-yaml", types=["yaml"]),
    "debug-statements": _py("debug-statement-hook", name="debug-statements", types=["python"]),
    "destroyed-symlinks": _py(
        "destroyed-symlinks", types=["file"], stages=["pre-commit", "pre-push", "manual"]
    ),
    "detect-aws-credentials": _py("detect-aws-credentials", types=["text"]),
    "detect-private-key": _py("detect-private-key", types=["text"]),
    "forbid-new-submodules": _py("forbid-new-submodules", types=["directory"]),
    "forbid-submodules": {
        "name": "forbid submodules",
        "entry": "submodules are not allowed in this repository:",
        "language": "fail",
        "types": ["directory"],
    },
    "name-tests-test": _py("name-tests-test", files=r"(^|/)tests/.+\.py$"),
    "no-commit-to-branch": _py("no-commit-to-branch", pass_filenames=False, always_run=True),
}
_PCH_FIXERS = {
    "double-quote-string-fixer": _py("double-quote-string-fixer", types=["python"]),
    "end-of-file-fixer": _py(
        "end-of-file-fixer",
        name="fix end of files",
        types=["text"],
        stages=["pre-commit", "pre-push", "manual"],
    ),
    "file-contents-sorter": _py("file-contents-sorter", files="^$"),
    "fix-byte-order-marker": _py("fix-byte-order-marker", types=["text"]),
    "mixed-line-ending": _py("mixed-line-ending", types=["text"]),
    "pretty-format-json": _py("pretty-format-json", types=["json"]),
    "requirements-txt-fixer": _py(
        "requirements-txt-fixer", files=r"(requirements|constraints).*\.txt$"
    ),
    "sort-simple-yaml": _py("sort-simple-yaml", name="sort simple yaml files", files="^$"),
    "trailing-whitespace": _py(
        "trailing-whitespace-fixer",
        name="trim trailing whitespace",
        types=["text"],
        stages=["pre-commit", "pre-push", "manual"],
    ),
}
_PYGREP = {
    "python-check-blanket-noqa": (r"(?i)# noqa(?!: )", ["python"]),
    "python-check-blanket-type-ignore": (r"# type:? *ignore(?!\[|\w)", ["python"]),
    "python-no-eval": (r"\beval\(", ["python"]),
    "python-no-log-warn": (r"(?<!warnings)\.warn\(", ["python"]),
    "python-use-type-annotations": (r"# type(?!: *ignore([^a-zA-Z0-9]|$))", ["python"]),
    "rst-backticks": (r"(^| )`[^`]+`([^_]|$)", ["rst"]),
    "rst-directive-colons": (r"^\s*\.\. [a-z]+(| | :):$", ["rst"]),
    "rst-inline-touching-normal": (r"\w``\w", ["rst"]),
    "text-unicode-replacement-char": ("\ufffd", ["text"]),
}

TABLE: Mapping[str, Known] = {
    "astral-sh/ruff-pre-commit": Known(
        "ruff",
        {
            "ruff-check": _py("ruff check --force-exclude", name="ruff check", **_RUFF),
            "ruff": _py("ruff check --force-exclude", name="ruff (legacy alias)", **_RUFF),
            "ruff-format": _py("ruff format --force-exclude", name="ruff format", **_RUFF),
        },
        {
            "ruff-check": Modifies(when=("--fix", "--fix-only", "--unsafe-fixes")),
            "ruff": Modifies(when=("--fix", "--fix-only", "--unsafe-fixes")),
            "ruff-format": Modifies(unless=("--check", "--diff")),
        },
    ),
    "pre-commit/mirrors-mypy": Known(
        "mypy",
        {
            "mypy": _py(
                "mypy",
                types_or=["python", "pyi"],
                args=["--ignore-missing-imports", "--scripts-are-modules"],
                require_serial=True,
            )
        },
        {"mypy": NEVER},
    ),
    "psf/black": Known(
        "black",
        {
            "black": _py("black", types_or=["python", "pyi"], require_serial=True),
            "black-jupyter": _py(
                "black",
                name="black-jupyter",
                types_or=["python", "pyi", "jupyter"],
                require_serial=True,
            ),
        },
        {
            "black": Modifies(unless=("--check", "--diff")),
            "black-jupyter": Modifies(unless=("--check", "--diff")),
        },
    ),
    "psf/black-pre-commit-mirror": Known(
        "black",
        {"black": _py("black", types_or=["python", "pyi"], require_serial=True)},
        {"black": Modifies(unless=("--check", "--diff"))},
    ),
    "pycqa/isort": Known(
        "isort",
        {"isort": _py("isort", files=r".pxd$|.py$", args=["--filter-files"], require_serial=True)},
        {"isort": Modifies(unless=("--check", "--check-only", "-c", "--diff"))},
    ),
    "pycqa/flake8": Known(
        "flake8",
        {"flake8": _py("flake8", types=["python"], require_serial=True)},
        {"flake8": NEVER},
    ),
    "codespell-project/codespell": Known(
        "codespell",
        {"codespell": _py("codespell", types=["text"])},
        {"codespell": Modifies(when=("-w", "--write-changes"))},
    ),
    "asottile/pyupgrade": Known(
        "pyupgrade",
        {"pyupgrade": _py("pyupgrade", types_or=["python", "pyi"])},
        {"pyupgrade": ALWAYS},
    ),
    "pycqa/autoflake": Known(
        "autoflake",
        {
            "autoflake": _py(
                "autoflake",
                types=["python"],
                require_serial=True,
                args=[
                    "--in-place",
                    "--expand-star-imports",
                    "--remove-duplicate-keys",
                    "--remove-unused-variables",
                ],
            )
        },
        {"autoflake": Modifies(when=("-i", "--in-place"))},
    ),
    "adamchainz/blacken-docs": Known(
        "blacken-docs",
        {"blacken-docs": _py("blacken-docs", types_or=["rst", "markdown", "tex", "python", "pyi"])},
        {"blacken-docs": Modifies(unless=("--check",))},
    ),
    "pre-commit/pygrep-hooks": Known(
        "",
        {
            hook_id: {"name": hook_id, "entry": entry, "language": "pygrep", "types": types}
            for hook_id, (entry, types) in _PYGREP.items()
        },
        dict.fromkeys(_PYGREP, NEVER),
    ),
    "abravalheri/validate-pyproject": Known(
        "validate-pyproject",
        {
            "validate-pyproject": _py(
                "validate-pyproject", name="Validate pyproject.toml", files="pyproject.toml"
            ),
            "validate-pyproject-minimal": _py(
                "validate-pyproject", name="Validate pyproject.toml", files="pyproject.toml"
            ),
        },
        {"validate-pyproject": NEVER, "validate-pyproject-minimal": NEVER},
    ),
    "econchick/interrogate": Known(
        "interrogate",
        {"interrogate": _py("interrogate", types=["python"], require_serial=True)},
        {"interrogate": Modifies(when=("-g", "--generate-badge"))},
    ),
    "pycqa/bandit": Known("bandit", {"bandit": _py("bandit", types=["python"])}, {"bandit": NEVER}),
    "pre-commit/pre-commit-hooks": Known(
        "pre-commit-hooks",
        {**_PCH_CHECKS, **_PCH_FIXERS},
        {
            **dict.fromkeys(_PCH_CHECKS, NEVER),
            **dict.fromkeys(_PCH_FIXERS, ALWAYS),
            "mixed-line-ending": Modifies(unless=("--fix=no",)),
            "pretty-format-json": Modifies(when=("--autofix",)),
        },
    ),
}
_MOVED = {
    "asottile/blacken-docs": "adamchainz/blacken-docs",
    "charliermarsh/ruff-pre-commit": "astral-sh/ruff-pre-commit",
    "timothycrosley/isort": "pycqa/isort",
    "myint/autoflake": "pycqa/autoflake",
}


def repo_key(url: str) -> str:
    """``https://github.com/PyCQA/flake8.git`` -> ``pycqa/flake8`` (what :data:`TABLE` keys)."""
    text = url.strip().rstrip("/")
    text = text.removesuffix(".git")
    parts = text.replace(":", "/").split("/")
    key = "/".join(parts[-2:]).lower()
    return _MOVED.get(key, key)


def known(url: str) -> Known | None:
    return TABLE.get(repo_key(url))


def version_of(rev: str) -> str:
    """``v0.8.1`` -> ``0.8.1``."""
    return rev[1:] if rev[:1] in "vV" and rev[1:2].isdigit() else rev


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------ stores


def pre_commit_home(environ: Mapping[str, str]) -> Path:
    home = environ.get("PRE_COMMIT_HOME") or os.path.join(
        environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pre-commit"
    )
    return Path(home)


def prek_home(environ: Mapping[str, str]) -> Path:
    home = environ.get("PREK_HOME") or os.path.join(
        environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "prek"
    )
    return Path(os.path.expanduser(home))


def pre_commit_clone(
    environ: Mapping[str, str], repo: str, rev: str, deps: Sequence[str] = ()
) -> Path | None:
    """The directory pre-commit cloned ``repo`` at ``rev`` into (with ``deps``: the clone
    pre-commit made for that set of additional dependencies), when its store has one."""
    db = pre_commit_home(environ) / "db.db"
    if not db.is_file():
        return None
    name = f"{repo}:{','.join(deps)}" if deps else repo
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT path FROM repos WHERE repo = ? AND ref = ?", (name, rev)
            ).fetchone()
    except sqlite3.Error:
        return None
    if not row:
        return None
    path = Path(row[0])
    return path if path.is_dir() else None


def prek_clone(environ: Mapping[str, str], repo: str, rev: str) -> Path | None:
    repos = prek_home(environ) / "repos"
    try:
        entries = sorted(repos.iterdir())
    except OSError:
        return None
    for entry in entries:
        try:
            marker = json.loads((entry / ".prek-repo.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(marker, dict) and marker.get("repo") == repo and marker.get("rev") == rev:
            return entry
    return None


def read_manifest(directory: Path) -> dict[str, dict[str, Any]]:
    """The hooks of a clone's ``.pre-commit-hooks.yaml`` by id."""
    import yaml

    path = directory / MANIFEST_FILE
    try:
        data = yaml.load(
            path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the manifest: {exc}") from None
    return manifest_hooks(data, str(path))


def table_manifest(url: str) -> dict[str, dict[str, Any]] | None:
    found = known(url)
    if found is None:
        return None
    warnings: list[str] = []
    return {
        hook_id: {"id": hook_id, **validate_hook("built-in table", hook_id, dict(hook), warnings)}
        for hook_id, hook in found.hooks.items()
    }


def pre_commit_env(
    environ: Mapping[str, str], repo: str, rev: str, deps: Sequence[str], language_version: str
) -> Path | None:
    """pre-commit's installed Python environment for this hook (``py_env-VERSION`` in its
    clone), when it is complete: what ``pre-commit run`` itself would run."""
    clone = pre_commit_clone(environ, repo, rev, deps)
    if clone is None:
        return None
    wanted = (
        [clone / f"py_env-{language_version}"]
        if language_version != "default"
        else sorted(clone.glob("py_env-*"))
    )
    for env in wanted:
        if not (env / "bin").is_dir():
            continue
        if (env / ".install_state_v2").exists():
            return env
        try:
            state = json.loads((env / ".install_state_v1").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if state == {"additional_dependencies": list(deps)}:
            return env
    return None


def modifies_by_entry(entry: Sequence[str], args: Sequence[str]) -> bool | None:
    """A ``repo: local`` hook whose entry is a tool of :data:`TABLE` (``ruff check``,
    ``codespell``, ``check-yaml``...) modifies files as that tool's hook does; None when the
    entry is no tool the table knows."""
    if not entry:
        return None
    program = os.path.basename(entry[0])
    given = [*entry[1:], *args]
    for repo in TABLE.values():
        for hook_id, hook in repo.hooks.items():
            words = str(hook["entry"]).split()
            if hook.get("language") != "python" or os.path.basename(words[0]) != program:
                continue
            if len(words) > 1 and words[1] not in entry[1:2]:
                continue  # ruff check vs ruff format
            rule = repo.modifies.get(hook_id)
            if rule is not None:
                return rule.given(given)
    return None
