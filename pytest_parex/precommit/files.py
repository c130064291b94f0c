"""The files a hook gets, as ``pre-commit run`` computes them: git's tracked files (``--all-files``)
or the changed ones (``--parex-changed``), the config's top-level ``files``/``exclude``, then the
hook's own ``files``/``exclude`` regexes and ``types``/``types_or``/``exclude_types`` tags from
``identify``.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pytest_parex.config import ConfigError
from pytest_parex.precommit.config import Hook

_GIT_LOCATION = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


def git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION}
    return subprocess.run(
        ["git", *args],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )


def _zsplit(out: bytes) -> list[str]:
    text = out.decode("utf-8", "surrogateescape").strip("\0")
    return text.split("\0") if text else []


def toplevel(root: Path) -> Path | None:
    """The git work tree ``root`` is in, or None (not in git, or git missing)."""
    try:
        proc = git(root, "rev-parse", "--show-toplevel")
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return Path(proc.stdout.decode().strip())


def tracked(root: Path) -> list[str]:
    """``git ls-files`` -- what ``pre-commit run --all-files`` starts from."""
    proc = git(root, "ls-files", "-z", "--deduplicate")
    if proc.returncode != 0:
        raise ConfigError(f"{root}: git ls-files failed: {proc.stderr.decode().strip()}")
    return _zsplit(proc.stdout)


def changed(root: Path, ref: str | None, environ: Mapping[str, str]) -> tuple[list[str], str]:
    """The files ``--parex-changed[=REF]`` gives the hooks, and how they were found.

    No REF: staged and unstaged changes against HEAD (untracked files are not git's yet, as
    for pre-commit); in GitHub Actions on a pull request, the changes since the
    merge base with ``origin/$GITHUB_BASE_REF``. REF: the changes since the merge base of REF
    and HEAD, the work tree's included.
    """
    base_ref = environ.get("GITHUB_BASE_REF", "")
    if ref is None and environ.get("GITHUB_ACTIONS") == "true" and base_ref:
        ref = f"origin/{base_ref}"
    if ref is None:
        proc = git(
            root, "diff", "HEAD", "--name-only", "--no-ext-diff", "-z", "--diff-filter=ACMRTUXB"
        )
        if proc.returncode != 0:  # no commit yet: everything staged
            proc = git(root, "diff", "--staged", "--name-only", "-z", "--diff-filter=ACMRTUXB")
        how = "staged and unstaged changes against HEAD"
    else:
        base = git(root, "merge-base", ref, "HEAD")
        if base.returncode != 0:
            message = base.stderr.decode().strip() or f"no merge base of {ref} and HEAD"
            raise ConfigError(f"--parex-changed={ref}: {message}")
        commit = base.stdout.decode().strip()
        proc = git(
            root, "diff", commit, "--name-only", "--no-ext-diff", "-z", "--diff-filter=ACMRTUXB"
        )
        how = f"changes since the merge base with {ref}"
    if proc.returncode != 0:
        raise ConfigError(f"--parex-changed: git diff failed: {proc.stderr.decode().strip()}")
    return sorted(dict.fromkeys(_zsplit(proc.stdout))), how


def include_exclude(names: Iterable[str], include: str, exclude: str) -> list[str]:
    inc, exc = re.compile(include), re.compile(exclude)
    return [n for n in names if inc.search(n) and not exc.search(n)]


class Classifier:
    """pre-commit's classifier: the files that exist (links too), their identify tags once."""

    def __init__(self, root: Path, names: Iterable[str]) -> None:
        self.root = root
        self.filenames = [n for n in names if os.path.lexists(root / n)]
        self.every: list[str] = self.filenames
        """Every tracked file (the meta hooks' global exclude check)."""
        self._tags: dict[str, frozenset[str]] = {}

    def tags(self, name: str) -> frozenset[str]:
        found = self._tags.get(name)
        if found is None:
            from identify.identify import tags_from_path

            found = self._tags[name] = frozenset(tags_from_path(str(self.root / name)))
        return found

    def by_types(
        self,
        names: Iterable[str],
        types: Sequence[str],
        types_or: Sequence[str],
        exclude_types: Sequence[str],
    ) -> list[str]:
        need, any_of, none_of = frozenset(types), frozenset(types_or), frozenset(exclude_types)
        out = []
        for name in names:
            tags = self.tags(name)
            if tags >= need and (not any_of or tags & any_of) and not tags & none_of:
                out.append(name)
        return out

    def for_hook(self, hook: Hook) -> list[str]:
        names = include_exclude(self.filenames, hook.files, hook.exclude)
        return self.by_types(names, hook.types, hook.types_or, hook.exclude_types)
