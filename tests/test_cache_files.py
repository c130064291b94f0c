"""Tests for pytest_parex.cache.listing and .digests: project listing, reads globs and content
digests (real files, real git repositories)."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytest_parex.cache import listing
from pytest_parex.cache.digests import FileIndex, is_unreadable
from pytest_parex.cache.listing import (
    Scanner,
    compile_pattern,
    matching_files,
    project_files,
    walk_files,
)

# A clock an hour ahead: every file looks old, so the stat shortcut is exercised. Tests that use
# it change files only through aged_edit(), which waits until the change shows in the ctime.
AGED = 3600 * 10**9


def aged_clock() -> int:
    return time.time_ns() + AGED


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git that knows who commits, ignores the user's own configuration, and never finds a
    repository above the test's directory."""
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@example.invalid")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def write(root: Path, rel: str, text: str = "x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def repo(root: Path) -> Path:
    root.mkdir(exist_ok=True)
    git(root, "init", "-q")
    return root


def commit(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "c")


def aged_edit(path: Path, text: str | None = None, *, mtime_ns: int | None = None) -> None:
    """Write (or just touch) ``path``, then wait until its ctime differs from before: what the
    racy window guarantees in real runs, made observable for a test on an aged clock."""
    before = path.lstat().st_ctime_ns if path.exists() else None
    if text is not None:
        path.write_text(text)
    st = path.lstat()
    mtime = st.st_mtime_ns if mtime_ns is None else mtime_ns
    os.utime(path, ns=(st.st_atime_ns, mtime))
    while path.lstat().st_ctime_ns == before:
        os.utime(path, ns=(st.st_atime_ns, mtime))


# ------------------------------------------------------------------------------ listing: git


def test_git_lists_tracked_and_untracked_not_ignored(tmp_path: Path) -> None:
    root = repo(tmp_path / "r")
    write(root, ".gitignore", "*.log\nbuild/\n")
    write(root, "a.py")
    write(root, "sub/b.py")
    write(root, "tracked.log")
    git(root, "add", "-f", "tracked.log")
    commit(root)
    write(root, "new.py")
    write(root, "debug.log")
    write(root, "build/out.txt")
    write(root, "name with spaces\tand tab.py")
    assert project_files(root) == [
        ".gitignore",
        "a.py",
        "name with spaces\tand tab.py",
        "new.py",
        "sub/b.py",
        "tracked.log",  # tracked files are in, even when an ignore rule names them
    ]


def test_git_deleted_tracked_file_is_listed_but_has_no_digest(tmp_path: Path) -> None:
    root = repo(tmp_path / "r")
    write(root, "a.py")
    write(root, "gone.py")
    commit(root)
    (root / "gone.py").unlink()
    files = project_files(root)
    assert "gone.py" in files  # git's index still has it: no lstat in the listing
    assert set(FileIndex().digests(root, files)) == {"a.py"}


def test_git_subdirectory_rootdir_lists_its_own_subtree(tmp_path: Path) -> None:
    root = repo(tmp_path / "r")
    write(root, ".gitignore", "*.tmp\n")
    write(root, "top.py")
    write(root, "proj/src/a.py")
    write(root, "proj/pyproject.toml")
    commit(root)
    write(root, "proj/untracked.py")
    write(root, "proj/x.tmp")  # ignored by the top-level .gitignore
    assert project_files(root / "proj") == ["pyproject.toml", "src/a.py", "untracked.py"]


def test_git_prunes_untracked_venvs_and_caches_but_keeps_tracked_files(tmp_path: Path) -> None:
    root = repo(tmp_path / "r")
    write(root, "node_modules/vendored.js")
    write(root, "a.py")
    commit(root)
    write(root, "myenv/pyvenv.cfg", "home = /usr\n")
    write(root, "myenv/lib/site.py")
    write(root, ".venv/bin/python")
    write(root, "pkg/__pycache__/a.cpython-311.pyc")
    write(root, ".hypothesis/examples/x")
    write(root, "pkg.egg-info/PKG-INFO")
    write(root, "node_modules/untracked.js")
    write(root, "pkg/mod.py")
    assert project_files(root) == ["a.py", "node_modules/vendored.js", "pkg/mod.py"]


def test_git_exclude_leaves_directories_out(tmp_path: Path) -> None:
    root = repo(tmp_path / "r")
    write(root, "a.py")
    write(root, "logs/old.txt")
    commit(root)
    write(root, "logs/new.txt")
    write(root, "state/s.json")
    write(root, "statefile.txt")  # shares a prefix with an excluded directory: kept
    files = project_files(root, exclude=["logs", "./state/", ""])
    assert files == ["a.py", "statefile.txt"]


def test_git_nested_repository_and_submodule_are_listed_through_their_git(
    tmp_path: Path,
) -> None:
    lib = repo(tmp_path / "lib")
    write(lib, ".gitignore", "*.o\n")
    write(lib, "lib.c")
    commit(lib)
    root = repo(tmp_path / "r")
    write(root, "a.py")
    git(root, "submodule", "add", "-q", str(lib), "vendor/lib")
    commit(root)
    write(root, "vendor/lib/obj.o")  # ignored by the submodule's own rules
    write(root, "vendor/lib/new.c")
    nested = repo(root / "nested")
    write(nested, "n.py")
    assert project_files(root) == [
        ".gitmodules",
        "a.py",
        "nested/n.py",
        "vendor/lib/.gitignore",
        "vendor/lib/lib.c",
        "vendor/lib/new.c",
    ]


def test_git_ignores_variables_pointing_at_another_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = repo(tmp_path / "other")
    write(other, "elsewhere.py")
    commit(other)
    root = repo(tmp_path / "r")
    write(root, "here.py")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    assert project_files(root) == ["here.py"]


def test_listing_falls_back_to_a_walk_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = repo(tmp_path / "r")
    write(root, ".gitignore", "*.log\n")
    write(root, "a.py")
    write(root, "debug.log")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git to be found
    assert project_files(root) == [".gitignore", "a.py", "debug.log"]


# ------------------------------------------------------------------------------ listing: walk


def test_walk_prunes_vcs_caches_and_venvs(tmp_path: Path) -> None:
    root = tmp_path / "t"
    write(root, "a.py")
    write(root, "src/b.py")
    for pruned in (
        ".git/HEAD",
        ".hg/x",
        ".svn/x",
        ".tox/py/x",
        ".nox/x",
        ".venv/x",
        "venv/x",
        "src/__pycache__/b.pyc",
        ".pytest_cache/v",
        ".mypy_cache/x",
        ".ruff_cache/x",
        ".hypothesis/x",
        ".parex/x",
        "node_modules/x",
        "src/pkg.egg-info/PKG-INFO",
        "custom-env/pyvenv.cfg",
        "custom-env/lib/x.py",
    ):
        write(root, pruned)
    write(root, "logs/run.log")
    assert project_files(root, exclude=["logs"]) == ["a.py", "src/b.py"]
    assert walk_files(root) == ["a.py", "logs/run.log", "src/b.py"]


def test_walk_lists_symlinks_without_following_directories(tmp_path: Path) -> None:
    root = tmp_path / "t"
    write(root, "real/x.py")
    write(tmp_path / "outside", "secret.py")
    (root / "to-outside").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "link.py").symlink_to("real/x.py")
    (root / "dangling").symlink_to("nowhere")
    os.mkfifo(root / "fifo")
    assert project_files(root) == ["dangling", "link.py", "real/x.py", "to-outside"]


def test_unlistable_directory_makes_its_inputs_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "t"
    write(root, "a.py")
    write(root, "locked/b.py")
    real_scandir = os.scandir
    locked = str(root / "locked")

    def scandir(path: str) -> object:
        if os.path.normpath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(listing.os, "scandir", scandir)
    files = project_files(root)
    assert files == ["a.py", "locked"]
    digests = FileIndex().digests(root, files)
    assert is_unreadable(digests["locked"])
    assert not is_unreadable(digests["a.py"])
    assert matching_files(root, ["locked/*.py"]) == ["locked"]


def test_an_entry_that_cannot_be_told_is_an_input_not_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: an OSError other than "not found" while a directory is listed keeps the entry
    (the digests then say whether it can be read) instead of dropping it from the key."""
    root = tmp_path / "t"
    write(root, "a.py")
    write(root, "odd.py")
    real_scandir = os.scandir

    class Odd:
        def __init__(self, entry: os.DirEntry[str]) -> None:
            self._entry = entry
            self.name = entry.name

        def is_file(self, *, follow_symlinks: bool = True) -> bool:
            if self.name == "odd.py":
                raise PermissionError(13, "Permission denied", self.name)
            return self._entry.is_file(follow_symlinks=follow_symlinks)

        def is_symlink(self) -> bool:
            return self._entry.is_symlink()

        def is_dir(self, *, follow_symlinks: bool = True) -> bool:
            return self._entry.is_dir(follow_symlinks=follow_symlinks)

    class Listing:
        def __init__(self, path: str) -> None:
            self._it = real_scandir(path)

        def __enter__(self) -> Listing:
            return self

        def __exit__(self, *exc: object) -> None:
            self._it.close()

        def __iter__(self) -> Iterator[Odd]:
            return (Odd(e) for e in self._it)

    monkeypatch.setattr(listing.os, "scandir", Listing)
    assert walk_files(root) == ["a.py", "odd.py"]
    assert matching_files(root, ["*.py"]) == ["a.py", "odd.py"]


def test_ignored_files_a_check_may_load_are_listed(tmp_path: Path) -> None:
    """Issue 16, case 2: git's ignored files that Python loads, that live in the project's
    packages, or that hold environment settings are inputs; what builds, caches and checks
    write is not."""
    root = tmp_path / "t"
    root.mkdir()
    git(root, "init", "-q")
    ignored = [
        ".env", ".env.local", "local_settings.py", "pkg/_version.py", "pkg/_speedups.so",
        "pkg/data/generated.json", "scratch/helper.py", "notes.txt", ".coverage",
        "build/lib/pkg/__init__.py", "htmlcov/index.html", "pkg/__pycache__/m.cpython-311.pyc",
        "data/huge.csv", "venv2/pyvenv.cfg", "venv2/lib/x.py",
    ]  # fmt: skip
    write(root, ".gitignore", "\n".join(ignored) + "\n")
    write(root, "pkg/__init__.py")
    write(root, "tracked.py")
    for rel in ignored:
        write(root, rel)
    assert project_files(root) == [
        ".env",
        ".env.local",
        ".gitignore",
        "local_settings.py",
        "pkg/__init__.py",
        "pkg/_speedups.so",
        "pkg/_version.py",
        "pkg/data/generated.json",
        "scratch/helper.py",
        "tracked.py",
    ]


# ------------------------------------------------------------------------------ globs


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("**/*.py", "a.py"),
        ("**/*.py", "x/y/a.py"),
        ("**", "any/thing"),
        ("src/**", "src/a"),
        ("src/**", "src/a/b/c"),
        ("src/**/test_*.py", "src/test_a.py"),
        ("src/**/test_*.py", "src/x/y/test_a.py"),
        ("src/*.py", "src/.hidden.py"),
        ("?.py", "a.py"),
        ("[ab].py", "b.py"),
        ("[!ab].py", "c.py"),
        ("[a-c]x", "bx"),
        ("[]a]", "]"),
        ("[!]a]", "b"),
        ("[a&&b]", "&"),
        ("./src/a.py", "src/a.py"),
        ("src\\a.py", "src/a.py"),
        ("src//a.py", "src/a.py"),
        ("data/*.csv", "data/x.csv"),
        ("a[b", "a[b"),
        ("a+b(c).py", "a+b(c).py"),
        ("../shared/*.toml", "../shared/ruff.toml"),
    ],
)
def test_pattern_matches(pattern: str, path: str) -> None:
    assert compile_pattern(pattern).regex.fullmatch(path)


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("*.py", "x/a.py"),
        ("src/*.py", "src/x/a.py"),
        ("src/**", "src"),
        ("src/**", "srcx/a"),
        ("?.py", "ab.py"),
        ("[ab].py", "c.py"),
        ("[!ab].py", "a.py"),
        ("[!a]", "/"),
        ("[!]a]", "]"),
        ("[]a]", "b"),
        ("a?b", "a/b"),
        ("**/*.py", "a.pyc"),
        ("a+b.py", "aab.py"),
    ],
)
def test_pattern_does_not_match(pattern: str, path: str) -> None:
    assert not compile_pattern(pattern).regex.fullmatch(path)


@pytest.mark.parametrize("pattern", ["/etc/passwd", "\\abs", "src/../../x", "a/**/../b"])
def test_pattern_rejects_absolute_and_inner_parent(pattern: str) -> None:
    with pytest.raises(ValueError, match="reads pattern"):
        compile_pattern(pattern)


def test_matching_reads_the_file_system_not_git(tmp_path: Path) -> None:
    root = repo(tmp_path / "r")
    write(root, ".gitignore", "data/\n")
    write(root, "data/a.csv")
    write(root, "data/b.csv")
    write(root, "data/c.txt")
    write(root, "data/deep/d.csv")
    assert matching_files(root, ["data/*.csv"]) == ["data/a.csv", "data/b.csv"]
    assert matching_files(root, ["data/**/*.csv"]) == [
        "data/a.csv",
        "data/b.csv",
        "data/deep/d.csv",
    ]


def test_matching_directories_name_everything_below(tmp_path: Path) -> None:
    root = tmp_path / "t"
    write(root, "docs/index.md")
    write(root, "docs/api/x.md")
    write(root, "src/pkg/a.py")
    write(root, "src/pkg/sub/b.py")
    write(root, "src/top.py")
    assert matching_files(root, ["docs"]) == ["docs/api/x.md", "docs/index.md"]
    assert matching_files(root, ["./docs/"]) == ["docs/api/x.md", "docs/index.md"]
    # A wildcard that names a directory names all it holds too: more inputs, never fewer.
    assert matching_files(root, ["src/*"]) == ["src/pkg/a.py", "src/pkg/sub/b.py", "src/top.py"]
    assert matching_files(root, ["src/*.py"]) == ["src/top.py"]
    assert matching_files(root, ["src/*/*.py"]) == ["src/pkg/a.py"]
    assert matching_files(root, ["missing.py", "missing/*.py"]) == []
    assert matching_files(root, ["src/top.py", "src/*.py", "**/top.py"]) == ["src/top.py"]


def test_matching_prunes_below_the_literal_prefix_only(tmp_path: Path) -> None:
    root = tmp_path / "t"
    write(root, "src/a.py")
    write(root, "src/__pycache__/a.py")
    write(root, ".venv/lib/site.py")
    write(root, "src/env/pyvenv.cfg")
    write(root, "src/env/x.py")
    write(root, "logs/x.py")
    assert matching_files(root, ["**/*.py"], exclude=["logs"]) == ["src/a.py"]
    assert matching_files(root, [".venv/lib/**"]) == [".venv/lib/site.py"]
    assert matching_files(root, [".venv"]) == [".venv/lib/site.py"]
    assert matching_files(root, ["logs/*.py"], exclude=["logs"]) == []
    assert matching_files(root, ["logs/x.py"], exclude=["./logs/"]) == []


def test_matching_does_not_follow_symlinked_directories(tmp_path: Path) -> None:
    root = tmp_path / "t"
    write(root, "real/a.py")
    (root / "alias").symlink_to("real", target_is_directory=True)
    assert matching_files(root, ["**/*.py"]) == ["real/a.py"]
    assert matching_files(root, ["*"]) == ["alias", "real/a.py"]
    # Named literally, a link is followed: the check reads through it.
    assert matching_files(root, ["alias"]) == ["alias", "alias/a.py"]
    assert matching_files(root, ["alias/*.py"]) == ["alias/a.py"]


def test_matching_outside_the_rootdir(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root, "a.py")
    write(tmp_path, "shared/ruff.toml")
    files = matching_files(root, ["../shared/*.toml"])
    assert files == ["../shared/ruff.toml"]
    assert set(FileIndex().digests(root, files)) == {"../shared/ruff.toml"}


def test_scanner_lists_each_directory_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "t"
    write(root, "src/a.py")
    write(root, "src/b.txt")
    calls: list[str] = []
    real_scandir = os.scandir

    def scandir(path: str) -> Iterator[os.DirEntry[str]]:
        calls.append(path)
        return real_scandir(path)

    monkeypatch.setattr(listing.os, "scandir", scandir)
    scanner = Scanner(root)
    assert scanner.matching(["src/*.py"]) == ["src/a.py"]
    assert scanner.matching(["src/*.txt", "**"]) == ["src/a.py", "src/b.txt"]
    assert len(calls) == len(set(calls))


# ------------------------------------------------------------------------------ digests


def test_digest_is_content_and_stable(tmp_path: Path) -> None:
    write(tmp_path, "a", "same")
    write(tmp_path, "b", "same")
    write(tmp_path, "c", "other")
    d = FileIndex().digests(tmp_path, ["a", "b", "c"])
    assert d["a"] == d["b"] != d["c"]
    assert FileIndex().digests(tmp_path, ["a"]) == {"a": d["a"]}


def test_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "x = 1\n")
    index = FileIndex(clock=aged_clock)
    first = index.digests(tmp_path, ["a.py"])
    assert index.hashed == 1
    assert index.digests(tmp_path, ["a.py"]) == first
    assert index.hashed == 1


def test_touch_keeps_the_digest_and_refreshes_the_entry(tmp_path: Path) -> None:
    path = write(tmp_path, "a.py", "x = 1\n")
    index = FileIndex(clock=aged_clock)
    first = index.digests(tmp_path, ["a.py"])
    aged_edit(path, mtime_ns=path.lstat().st_mtime_ns + 5 * 10**9)
    assert index.digests(tmp_path, ["a.py"]) == first
    assert index.hashed == 2  # the stat changed: read again, same content
    assert index.digests(tmp_path, ["a.py"]) == first
    assert index.hashed == 2  # and the refreshed entry is used from then on


def test_edit_with_restored_mtime_changes_the_digest(tmp_path: Path) -> None:
    path = write(tmp_path, "a.py", "x = 1\n")
    index = FileIndex(clock=aged_clock)
    first = index.digests(tmp_path, ["a.py"])
    before = path.lstat()
    aged_edit(path, "x = 2\n", mtime_ns=before.st_mtime_ns)  # same size, same mtime
    after = path.lstat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    assert index.digests(tmp_path, ["a.py"]) != first


def test_just_written_file_is_racy_and_read_every_time(tmp_path: Path) -> None:
    path = write(tmp_path, "a.py", "x = 1\n")
    index = FileIndex()  # the real clock: the file is younger than the racy window
    first = index.digests(tmp_path, ["a.py"])
    assert "a.py" not in index  # a racy entry is never kept
    mtime = path.lstat().st_mtime_ns
    path.write_text("x = 2\n")  # same size; maybe within the same timestamp tick
    os.utime(path, ns=(mtime, mtime))
    second = index.digests(tmp_path, ["a.py"])
    assert second != first
    assert index.hashed == 2


@pytest.mark.parametrize(("after_s", "trusted"), [(0.0, False), (1.9, False), (2.1, True)])
def test_racy_window_decides_trust(tmp_path: Path, after_s: float, trusted: bool) -> None:
    """A file changed (mtime or ctime) less than 2 s before it was hashed is racy: its entry is
    not kept. The clock is pinned to the file's own ctime."""
    path = write(tmp_path, "a.py")
    old = path.lstat().st_mtime_ns - 60 * 10**9
    os.utime(path, ns=(old, old))
    ctime = path.lstat().st_ctime_ns
    index = FileIndex(clock=lambda: ctime + int(after_s * 1e9))
    index.digests(tmp_path, ["a.py"])
    assert ("a.py" in index) is trusted


def test_rename_delete_add(tmp_path: Path) -> None:
    a = write(tmp_path, "a.py", "AAAA")
    b = write(tmp_path, "b.py", "BBBB")
    index = FileIndex(clock=aged_clock)
    first = index.digests(tmp_path, ["a.py", "b.py"])
    mtime = b.lstat().st_mtime_ns
    os.replace(a, b)  # b is now a's inode, same size
    os.utime(b, ns=(mtime, mtime))
    index.changed = False
    after = index.digests(tmp_path, ["a.py", "b.py"])
    assert after == {"b.py": first["a.py"]}
    assert index.changed and "a.py" not in index
    write(tmp_path, "c.py", "CCCC")
    assert index.digests(tmp_path, ["b.py", "c.py"])["c.py"] not in first.values()
    b.unlink()
    assert index.digests(tmp_path, ["b.py", "c.py"]).keys() == {"c.py"}


def test_executable_bit_is_part_of_the_digest(tmp_path: Path) -> None:
    path = write(tmp_path, "run.sh", "echo hi\n")
    index = FileIndex(clock=aged_clock)
    first = index.digests(tmp_path, ["run.sh"])
    path.chmod(0o755)  # the mode is a stat field: no need to wait for the ctime
    assert index.digests(tmp_path, ["run.sh"]) != first


def test_symlink_digest_is_its_text_and_its_targets_content(tmp_path: Path) -> None:
    """Issue 16, case 3: a check reads through a link, so the target's content is an input --
    also a target outside the rootdir, reached through the stat shortcut of its own path."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(root, "target.py", "real")
    write(root, "plain", "target.py")  # a file whose content is the link's text
    write(outside, "far.py", "far")
    link = root / "link"
    link.symlink_to("target.py")
    (root / "dangling").symlink_to("nowhere")
    (root / "far").symlink_to(outside / "far.py")
    (root / "dir").symlink_to(outside)
    index = FileIndex(clock=aged_clock)
    d = index.digests(root, ["target.py", "plain", "link", "dangling", "far", "dir"])
    assert len(set(d.values())) == 6
    assert index.dir_links == {"dir": os.path.realpath(outside)}
    aged_edit(root / "target.py", "changed")
    assert index.digests(root, ["link"])["link"] != d["link"]
    aged_edit(outside / "far.py", "farther")
    assert index.digests(root, ["far"])["far"] != d["far"]
    # The same target again, other link text: another digest.
    link.unlink()
    link.symlink_to(root / "target.py")
    again = index.digests(root, ["link", "target.py"])
    assert again["link"] != d["link"] and again["link"] != again["target.py"]
    # A link that points at itself cannot be read: never a key that could match.
    (root / "loop").symlink_to("loop")
    assert is_unreadable(index.digests(root, ["loop"])["loop"])


def test_vanished_fifo_and_unreadable_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "ok.py")
    write(tmp_path, "secret.py")
    os.mkfifo(tmp_path / "fifo")
    real_open = os.open

    def refusing_open(path: str, flags: int, *args: int) -> int:
        if path.endswith("secret.py"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(listing.os, "open", refusing_open)
    index = FileIndex(clock=aged_clock)
    d = index.digests(tmp_path, ["ok.py", "gone.py", "fifo", "secret.py"])
    assert set(d) == {"ok.py", "secret.py"}
    assert is_unreadable(d["secret.py"])
    again = index.digests(tmp_path, ["secret.py"])["secret.py"]
    assert is_unreadable(again) and again != d["secret.py"]  # never equal twice
    assert "secret.py" not in index


def test_large_file_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"a" * (3 * 1024 * 1024 + 7))
    first = FileIndex().digests(tmp_path, ["big.bin"])
    with path.open("r+b") as fh:
        fh.seek(3 * 1024 * 1024 + 3)
        fh.write(b"b")
    assert FileIndex().digests(tmp_path, ["big.bin"]) != first


# ------------------------------------------------------------------------------ persistence


def settle_index(index_path: Path, root: Path) -> None:
    """Make the saved index younger than every file (what a later save in a real run is)."""
    newest = max(p.lstat().st_ctime_ns for p in root.rglob("*"))
    while index_path.stat().st_mtime_ns <= newest:
        os.utime(index_path)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "t"
    for i in range(5):
        write(root, f"f{i}.py", f"{i}")
    files = walk_files(root)
    index = FileIndex(clock=aged_clock)
    first = index.digests(root, files)
    saved = tmp_path / "state" / "index.json"
    assert index.save(saved) is None
    assert [p.name for p in saved.parent.iterdir()] == ["index.json"]  # no temp file left
    settle_index(saved, root)
    loaded, warning = FileIndex.load(saved, racy_window_ns=0)
    assert warning is None and len(loaded) == 5
    assert loaded.digests(root, files) == first
    assert loaded.hashed == 0
    assert not loaded.changed
    mtime = saved.stat().st_mtime_ns
    assert loaded.save(saved) is None
    assert saved.stat().st_mtime_ns == mtime  # nothing changed: not written


def test_loaded_entries_younger_than_the_index_file_are_read_again(tmp_path: Path) -> None:
    """The index file's own mtime bounds trust: a file system whose clock lags ours cannot
    make a file modified just before hashing look old."""
    root = tmp_path / "t"
    write(root, "a.py")
    index = FileIndex(clock=aged_clock)
    index.digests(root, ["a.py"])
    saved = tmp_path / "index.json"
    index.save(saved)
    old = (root / "a.py").lstat().st_ctime_ns - 60 * 10**9
    os.utime(saved, ns=(old, old))
    loaded, _ = FileIndex.load(saved)
    loaded.digests(root, ["a.py"])
    assert loaded.hashed == 1


def test_a_restored_index_on_another_checkout_rehashes_by_content(tmp_path: Path) -> None:
    one = tmp_path / "one"
    write(one, "a.py", "A")
    write(one, "b/c.py", "C")
    files = ["a.py", "b/c.py"]
    index = FileIndex(clock=aged_clock)
    first = index.digests(one, files)
    saved = tmp_path / "index.json"
    index.save(saved)
    two = tmp_path / "two"
    shutil.copytree(one, two)
    (two / "a.py").write_text("Z")
    settle_index(saved, two)
    loaded, _ = FileIndex.load(saved, racy_window_ns=0)
    second = loaded.digests(two, files)
    assert second["b/c.py"] == first["b/c.py"]
    assert second["a.py"] != first["a.py"]
    assert loaded.hashed == 2  # other inodes and ctimes: nothing trusted, all read


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"\x00\xff garbage",
        b"[]",
        b'{"format": 1, "entries": {}}',
        b'{"format": 2, "entries": {"a": 5}}',
        b'{"format": 2, "entries": []}',
        b'{"format": 2}',
        b"[" * 100_000,
    ],
)
def test_damaged_index_is_empty_with_a_warning(tmp_path: Path, content: bytes) -> None:
    saved = tmp_path / "index.json"
    saved.write_bytes(content)
    index, warning = FileIndex.load(saved)
    assert len(index) == 0
    assert warning is not None and "\n" not in warning and str(saved) in warning


def test_missing_index_is_empty_without_warning(tmp_path: Path) -> None:
    index, warning = FileIndex.load(tmp_path / "nope.json")
    assert len(index) == 0 and warning is None


def test_save_failure_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "a.py")
    index = FileIndex(clock=aged_clock)
    index.digests(tmp_path, ["a.py"])
    (tmp_path / "blocker").write_text("a file where a directory should be")
    warning = index.save(tmp_path / "blocker" / "index.json")
    assert warning is not None and "cannot write" in warning


def test_save_drops_entries_of_files_that_are_gone(tmp_path: Path) -> None:
    root = tmp_path / "t"
    write(root, "keep.py")
    write(root, "gone.py")
    write(root, "other.py")
    index = FileIndex(clock=aged_clock)
    index.digests(root, ["keep.py", "gone.py", "other.py"])
    saved = tmp_path / "index.json"
    index.save(saved)
    settle_index(saved, root)
    loaded, _ = FileIndex.load(saved, racy_window_ns=0)
    (root / "gone.py").unlink()
    write(root, "new.py")
    loaded.digests(root, ["keep.py", "new.py"])  # other.py: not asked about, still valid
    assert loaded.save(saved) is None
    entries = json.loads(saved.read_text())["entries"]
    assert sorted(entries) == ["keep.py", "new.py", "other.py"]


segment = st.lists(st.sampled_from(["a", "b", ".", "*", "?", "[ab]", "[!a]", "[a-b]"]), min_size=1)
name = st.text(alphabet="ab.-", min_size=1, max_size=4)


@given(st.lists(segment, min_size=1, max_size=3), st.lists(name, min_size=1, max_size=3))
@settings(max_examples=300, deadline=None, database=None)
def test_patterns_without_doublestar_match_like_fnmatch_per_segment(
    pattern_segments: list[list[str]], path_segments: list[str]
) -> None:
    """Within one segment a glob means what fnmatch says; segments never cross a slash."""
    pattern = "/".join("".join(s) for s in pattern_segments)
    # "**" segments, and "." or ".." (normalised away or rejected): other shapes, tested above.
    assume(not any("".join(s) in (".", "..", "**") for s in pattern_segments))
    expected = len(pattern_segments) == len(path_segments) and all(
        fnmatch.fnmatchcase(p, "".join(s))
        for p, s in zip(path_segments, pattern_segments, strict=True)
    )
    assert bool(compile_pattern(pattern).regex.fullmatch("/".join(path_segments))) == expected


def test_the_background_git_listing_hands_its_error_to_project_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # git looks at the tree in a thread; a failure there is not turned into a silent walk:
    # whatever needs the tree (a glob, the project's files) raises it, as a listing in the
    # caller's thread would.
    (tmp_path / "a.py").write_text("x = 1\n")

    def broken(root: Path) -> None:
        raise RuntimeError(f"listing {root.name} failed")

    monkeypatch.setattr(listing, "read_git_tree", broken)
    scanner = Scanner(tmp_path)
    scanner.start_project_files()
    with pytest.raises(RuntimeError, match="failed"):
        scanner.matching(["*.py"])
    with pytest.raises(RuntimeError, match="failed"):
        scanner.project_files()


# ------------------------------------------------------------------------------ git vs walk

TREE_PATHS = (
    "a.py", "b.txt", "src/m.py", "src/sub/n.py", "src/sub/data.csv", "src/x.py/inner.txt",
    "docs/index.md", "build/out.py", "data/big.csv", "data/nested/more.csv",
    "src/__pycache__/m.pyc", ".venv/lib/site.py", "env2/pyvenv.cfg", "env2/lib/y.py",
    "notes.log", "src/notes.log", "pkg/__init__.py", "pkg/_gen.py",
)  # fmt: skip
IGNORES = ("data/", "*.log", "build/", "pkg/_gen.py", "env2/", ".venv/", "__pycache__/")
GLOBS = (
    "**/*.py", "src/**", "src/*", "*.txt", "**/*.csv", "data/**", "src/sub/*.py", "**/*.log",
    "build/*.py", "*/*.py", "src/*.py", "**", "pkg/*", "?.py", "[ab].*", "src/**/n.py",
    "docs", "src", "data/*.csv", "vendor/**", "vendor/*.py", "src/alias/*", "*",
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.sets(st.sampled_from(TREE_PATHS), min_size=1),
    tracked=st.sets(st.sampled_from(TREE_PATHS)),
    ignores=st.sets(st.sampled_from(IGNORES)),
    globs=st.lists(st.sampled_from(GLOBS), min_size=1, max_size=3),
    links=st.booleans(),
)
def test_globs_match_the_same_files_through_git_as_through_a_walk(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: set[str],
    tracked: set[str],
    ignores: set[str],
    globs: list[str],
    links: bool,
) -> None:
    """In a git work tree a wildcard glob is matched against git's listing (tracked,
    untracked, ignored: ignored directories walked when a glob reaches them) instead of a
    walk: the files must be the walk's, whatever is tracked or ignored."""
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    git(root, "init", "-q")
    write(root, ".gitignore", "\n".join(sorted(ignores)) + "\n")
    for rel in sorted(files):
        write(root, rel)
    present = [rel for rel in sorted(tracked & files)]
    if present:
        git(root, "add", "-f", *present)
    if links:
        outside = Path(tempfile.mkdtemp(dir=tmp_path))
        write(outside, "far/f.py")
        (root / "vendor").symlink_to(outside / "far")
        if (root / "src").is_dir():
            (root / "src" / "alias").symlink_to(root / "src", target_is_directory=True)
    through_git = Scanner(root).matching(globs)
    with monkeypatch.context() as m:
        m.setattr(listing, "read_git_tree", lambda root: None)
        walked = Scanner(root).matching(globs)
    assert through_git == walked
