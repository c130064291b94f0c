"""Tests for pytest_parex.cache: key parts, reasons, identities and the on-disk store,
plus a model-based test of the whole pipeline (inputs -> digests -> parts -> store)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_parex.cache.digests import FileIndex
from pytest_parex.cache.identity import (
    executable_identity,
    external_path_entries,
    installed_code,
    installed_distributions,
    interpreter_of,
    interpreter_path,
    normalise_distribution,
    python_identity,
    resolve_executable,
    same_interpreter,
)
from pytest_parex.cache.key import KeyParts, env_values
from pytest_parex.cache.listing import matching_files, project_files
from pytest_parex.cache.reasons import explain
from pytest_parex.cache.store import Entry, Lookup, Store

AGED = 3600 * 10**9


def aged_clock() -> int:
    return time.time_ns() + AGED


def parts(**kw: Any) -> KeyParts:
    base: dict[str, Any] = {
        "definition": {"kind": "command", "run": ["ruff", "check"], "cwd": "."},
        "files": {"src/a.py": "1", "src/b.py": "2"},
        "tools": {"ruff": "/bin/ruff 1"},
        "versions": {"ruff": "0.8.1", "pytest": "8.3.0"},
        "python": "cpython 3.11.7 /venv/bin/python",
        "env": {"PYTEST_ADDOPTS": None, "CI": "sha256:1"},
    }
    base.update(kw)
    return KeyParts(**base)


def cache(tmp_path: Path, **kw: Any) -> Store:
    kw.setdefault("max_bytes", 10**8)
    kw.setdefault("max_age", 10**9)
    return Store(tmp_path / "cache", **kw)


# ------------------------------------------------------------------------------ KeyParts


def test_digest_is_canonical() -> None:
    a = parts(files={"x": "1", "y": "2"}, definition={"run": ("a", 1), "cwd": "."})
    b = parts(files={"y": "2", "x": "1"}, definition={"cwd": ".", "run": ["a", 1]})
    assert a == b and a.digest() == b.digest()
    assert len(a.digest()) == 64
    assert parts(files={"x": "1"}).digest() != parts(files={"x": "2"}).digest()
    assert parts(env={"A": None}).digest() != parts(env={"A": "sha256:0"}).digest()
    assert parts(env={"A": None}).digest() != parts(env={}).digest()


def test_parts_are_copied_and_read_only() -> None:
    files = {"x": "1"}
    definition: dict[str, Any] = {"run": ["a"]}
    p = parts(files=files, definition=definition)
    digest = p.digest()
    files["x"] = "2"
    definition["run"].append("b")
    assert p.files == {"x": "1"} and p.definition["run"] == ("a",)
    assert p.digest() == digest
    with pytest.raises(TypeError):
        p.files["x"] = "3"  # type: ignore[index]


def test_parts_json_round_trip() -> None:
    p = parts(definition={"run": ["a", "b"], "env": {"X": "1"}, "timeout": 1.5})
    back = KeyParts.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p and back.digest() == p.digest()


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {},
        {**parts().to_dict(), "extra": 1},
        {**parts().to_dict(), "files": {"a": 1}},
        {**parts().to_dict(), "files": []},
        {**parts().to_dict(), "tools": {"a": None}},
        {**parts().to_dict(), "versions": "x"},
        {**parts().to_dict(), "python": 3},
        {**parts().to_dict(), "definition": []},
        {**parts().to_dict(), "env": {"A": 1}},
    ],
)
def test_parts_from_bad_json(data: object) -> None:
    with pytest.raises(ValueError):
        KeyParts.from_dict(data)


def test_definition_must_be_json_data() -> None:
    with pytest.raises((TypeError, ValueError)):
        parts(definition={"x": object()})
    with pytest.raises(ValueError):
        parts(definition={"x": float("nan")})


# ------------------------------------------------------------------------------ explain


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({}, "failed", "last run failed"),
        ({}, "flaky", "last run was flaky"),
        ({}, "timeout", "last run timed out"),
        ({}, "error", "last run had an error"),
        ({"definition": {"kind": "command", "run": ["ruff"], "cwd": "."}}, None, "run changed"),
        (
            {"definition": {"kind": "command", "run": ["x"], "cwd": "src", "env": {}}},
            None,
            "cwd, env, run changed",
        ),
        ({"python": "cpython 3.12.1 /venv/bin/python"}, None, "python 3.11.7 → 3.12.1"),
        ({"python": "cpython 3.11.7 /other/bin/python"}, None, "python executable changed"),
        ({"versions": {"ruff": "0.8.2", "pytest": "8.3.0"}}, None, "ruff 0.8.1 → 0.8.2"),
        (
            {"versions": {"ruff": "0.8.2", "pytest": "8.3.1"}},
            None,
            "pytest 8.3.0 → 8.3.1, +1 more",
        ),
        (
            {"versions": {"ruff": "0.8.1", "pytest": "8.3.0", "mypy": "1.0"}},
            None,
            "mypy 1.0 installed",
        ),
        ({"versions": {"ruff": "0.8.1"}}, None, "pytest 8.3.0 uninstalled"),
        ({"tools": {"ruff": "/bin/ruff 2"}}, None, "ruff executable changed"),
        ({"tools": {"ruff": "/bin/ruff 2", "mypy": "x"}}, None, "mypy, ruff executables changed"),
        ({"env": {"PYTEST_ADDOPTS": "sha256:2", "CI": "sha256:1"}}, None, "PYTEST_ADDOPTS changed"),
        ({"env": {}}, None, "CI, PYTEST_ADDOPTS changed"),
        (
            {"env": {"A": None, "B": None, "C": None, "CI": "sha256:1", "PYTEST_ADDOPTS": None}},
            None,
            "3 environment variables changed: A, B, +1 more",
        ),
        ({"files": {"src/a.py": "9", "src/b.py": "2"}}, None, "src/a.py changed"),
        ({"files": {"src/a.py": "1", "src/b.py": "2", "src/c.py": "3"}}, None, "src/c.py added"),
        ({"files": {"src/a.py": "1"}}, None, "src/b.py removed"),
        (
            {"files": {"src/a.py": "9", "src/b.py": "8", "src/c.py": "3"}},
            None,
            "3 files changed: src/a.py, src/b.py, +1 more",
        ),
        ({"files": {"src/a.py": "1", "src/b.py": "!unreadable:12"}}, None, "src/b.py unreadable"),
        ({}, None, "unchanged"),
    ],
)
def test_explain(change: dict[str, Any], status: str | None, reason: str) -> None:
    assert explain(parts(), parts(**change), last_status=status) == reason


def test_explain_without_an_earlier_pass() -> None:
    assert explain(None, parts(), last_status=None) == "no earlier pass"
    assert explain(None, parts(), last_status="timeout") == "last run timed out"


def test_explain_puts_the_most_decisive_difference_first() -> None:
    everything = parts(
        definition={"run": ["other"]},
        files={"src/a.py": "9"},
        versions={"ruff": "9"},
        env={},
        python="pypy 3.10.0 /x",
    )
    assert explain(parts(), everything, last_status=None).endswith("changed")
    assert explain(parts(), everything, last_status=None).startswith("cwd, kind, run")
    no_def = parts(files={"src/a.py": "9"}, versions={"ruff": "9", "pytest": "8.3.0"}, env={})
    assert explain(parts(), no_def, last_status=None) == "ruff 0.8.1 → 9"


def test_explain_escapes_control_characters() -> None:
    evil = "src/\x1b[31mred\n.py"
    reason = explain(parts(files={}), parts(files={evil: "1"}), last_status=None)
    assert reason == "src/\\x1b[31mred\\n.py added"
    assert reason.isprintable()


# ------------------------------------------------------------------------------ part helpers


def make_tool(directory: Path, name: str, body: str = "#!/bin/sh\necho 1\n") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / name
    tool.write_text(body)
    tool.chmod(0o755)
    return tool


def test_executable_identity_follows_path_and_content(tmp_path: Path) -> None:
    first = make_tool(tmp_path / "bin1", "tool")
    make_tool(tmp_path / "bin2", "tool", "#!/bin/sh\necho 2\n")
    path1 = f"{tmp_path / 'bin1'}{os.pathsep}{tmp_path / 'bin2'}"
    ident = executable_identity("tool", path1, tmp_path)
    assert ident.startswith(str(first) + " ")
    path2 = f"{tmp_path / 'bin2'}{os.pathsep}{tmp_path / 'bin1'}"
    assert executable_identity("tool", path2, tmp_path) != ident
    mtime = first.stat().st_mtime_ns
    os.utime(first, ns=(mtime + 10**9, mtime + 10**9))  # touched: same content, same identity
    assert executable_identity("tool", path1, tmp_path) == ident
    first.write_text("#!/bin/sh\necho 3\n")  # same size, other content
    assert executable_identity("tool", path1, tmp_path) != ident


def test_executable_identity_resolves_like_the_os(tmp_path: Path) -> None:
    tool = make_tool(tmp_path / "proj" / "tools", "lint")
    cwd = tmp_path / "proj"
    # A relative PATH entry is relative to the check's cwd, as the child resolves it.
    assert resolve_executable("lint", "tools", cwd) == str(tool)
    assert resolve_executable("./tools/lint", "", cwd) == str(tool)
    assert resolve_executable(str(tool), "", tmp_path) == str(tool)
    assert resolve_executable("lint", str(tmp_path), cwd) is None
    assert executable_identity("nope", "", cwd) == "not found: nope"
    link = tmp_path / "bin" / "lint"
    link.parent.mkdir()
    link.symlink_to(tool)
    ident = executable_identity("lint", str(link.parent), cwd)
    assert ident.startswith(f"{link} -> {tool} ")


def test_executable_identity_uses_the_stat_shortcut(tmp_path: Path) -> None:
    make_tool(tmp_path / "bin", "tool")
    index = FileIndex(clock=aged_clock)
    one = executable_identity("tool", str(tmp_path / "bin"), tmp_path, index=index)
    two = executable_identity("tool", str(tmp_path / "bin"), tmp_path, index=index)
    assert one == two and index.hashed == 1


def test_tool_digests_in_another_cwd_keep_the_index_of_the_rootdir(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "sub").mkdir(parents=True)
    for name in ("a.py", "b.py"):
        (root / name).write_text(name)
    make_tool(tmp_path / "bin", "tool")
    index = FileIndex(clock=aged_clock)
    index.digests(root, ["a.py", "b.py"])
    saved = tmp_path / "index.json"
    index.save(saved)
    loaded, _ = FileIndex.load(saved, clock=aged_clock)
    loaded.digests(root, ["a.py"])  # b.py: a check deselected this time
    executable_identity("tool", str(tmp_path / "bin"), root / "sub", index=loaded)
    assert loaded.save(saved) is None
    assert {"a.py", "b.py"} <= set(json.loads(saved.read_text())["entries"])


def test_installed_distributions(tmp_path: Path) -> None:
    first, second = tmp_path / "site1", tmp_path / "site2"
    (first / "Foo_Bar-1.0.dist-info").mkdir(parents=True)
    (first / "baz-2.0-py3.11.egg-info").mkdir()
    (first / "qux.egg-info").mkdir()
    (first / "qux.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: Qux\nVersion: 3.1\n"
    )
    (first / "not-a-dist").mkdir()
    (second / "foo.bar-9.9.dist-info").mkdir(parents=True)
    (second / "other-0.1.dist-info").mkdir()
    found = installed_distributions([str(first), str(tmp_path / "missing.zip"), str(second)])
    assert found == {"baz": "2.0", "foo-bar": "1.0", "other": "0.1", "qux": "3.1"}
    real = installed_distributions()
    assert real["pytest"] == __import__("pytest").__version__
    assert normalise_distribution("Typing.Extensions__x") == "typing-extensions-x"


def test_installed_code_keys_content_and_finds_development_installs(tmp_path: Path) -> None:
    """Issue 16, case 8: a distribution is keyed by the content of its record of files; a
    project installed in development mode (PEP 610 ``direct_url.json`` with ``editable``, an
    ``.egg-link``) is found by its directory."""
    site, project, old = tmp_path / "site", tmp_path / "lib", tmp_path / "old"
    project.mkdir()
    old.mkdir()
    dist = site / "pkg-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "RECORD").write_text("pkg.py,sha256=aaa,10\n")
    lib = site / "lib-0.1.dist-info"
    lib.mkdir()
    (lib / "RECORD").write_text("__editable__.lib.pth,,\n")
    (lib / "direct_url.json").write_text(
        json.dumps({"url": project.as_uri(), "dir_info": {"editable": True}})
    )
    archive = site / "arch-2.0.dist-info"
    archive.mkdir()
    (archive / "direct_url.json").write_text(
        json.dumps({"url": "file:///x.whl", "archive_info": {}})
    )
    (site / "old.egg-link").write_text(f"{old}\n.\n")
    index = FileIndex(clock=aged_clock)
    code = installed_code([str(site)], index)
    assert code.versions == {"arch": "2.0", "lib": "0.1", "pkg": "1.0"}
    assert code.content["arch"] == "none"  # no RECORD: its name and version key it
    assert set(code.sources) == {str(old), str(project)}
    # Rebuilt and reinstalled at the same version: another RECORD, another key.
    (dist / "RECORD").write_text("pkg.py,sha256=bbb,10\n")
    assert installed_code([str(site)], FileIndex()).content["pkg"] != code.content["pkg"]


def test_external_path_entries(tmp_path: Path) -> None:
    """Import path entries outside the rootdir that are neither the standard library nor a
    site directory: their files are inputs."""
    root, lib, target = tmp_path / "root", tmp_path / "lib", tmp_path / "target"
    for folder in (root / "src", lib, target):
        folder.mkdir(parents=True)
    (target / "x-1.0.dist-info").mkdir()  # pip install --target: a site directory of its own
    stdlib = os.path.dirname(os.__file__)
    entries = ["", str(root / "src"), str(lib), str(lib), str(target), stdlib, str(tmp_path / "no")]
    assert external_path_entries(entries, root) == [os.path.realpath(lib)]


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        ("#!{python}", "{python}"),
        ("#!/usr/bin/env python3", "which"),
        ("#!/usr/bin/env -S python3 -u", "which"),
        ("#!/bin/sh", None),
        ("binary\0", None),
    ],
)
def test_interpreter_of_a_script(tmp_path: Path, first_line: str, expected: str | None) -> None:
    """Issue 16, case 9: the Python a tool runs on is read off its ``#!`` line."""
    python = sys.executable
    script = tmp_path / "tool"
    script.write_text(first_line.format(python=python) + "\nprint(1)\n")
    found = interpreter_of(str(script), os.environ.get("PATH"), tmp_path)
    if expected == "which":
        assert found == shutil.which("python3")
    else:
        assert found == (expected.format(python=python) if expected else None)
    assert interpreter_of(python, None, tmp_path) == python
    assert same_interpreter(python)


def test_another_interpreters_path(tmp_path: Path) -> None:
    """A virtualenv's site directories are read off its files; other interpreters are asked."""
    venv = tmp_path / "venv"
    site = venv / "lib" / "python3.99" / "site-packages"
    site.mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.99.1\n")
    label, path = interpreter_path(str(venv / "bin" / "python"))
    assert label == f"python 3.99.1 {venv / 'bin' / 'python'}" and path == [str(site)]
    base = getattr(sys, "_base_executable", sys.executable)
    label, path = interpreter_path(base)
    assert label.startswith("python " + ".".join(map(str, sys.version_info[:3])))
    assert any(p.endswith(("site-packages", "dist-packages")) for p in path), path


def test_python_identity() -> None:
    ident = python_identity()
    assert ident.split(" ")[1] == ".".join(map(str, sys.version_info[:3]))
    assert ident.endswith(sys.executable)


def test_env_values() -> None:
    environ = {
        "PYTEST_ADDOPTS": "-x",
        "PYTEST_PAREX_CACHE": "0",
        "PYTEST_CURRENT_TEST": "t",
        "RUFF_CACHE_DIR": "/c",
        "TOKEN": "s3cret",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONHASHSEED": "0",
    }
    names = ["PYTEST_*", "RUFF_*", "TOKEN", "UNSET", "PYTEST_CURRENT_TEST", "PYTHON*"]
    got = env_values(names, environ)
    assert sorted(got) == ["PYTEST_ADDOPTS", "PYTHONHASHSEED", "RUFF_CACHE_DIR", "TOKEN", "UNSET"]
    assert got["UNSET"] is None
    assert "s3cret" not in json.dumps(got)
    assert got != env_values(["PYTEST_*", "RUFF_*", "TOKEN", "UNSET"], {**environ, "TOKEN": "x"})


# ------------------------------------------------------------------------------ the store


def test_round_trip_and_replay(tmp_path: Path) -> None:
    c = cache(tmp_path)
    p = parts()
    output = b"line 1\n\xff\xfe not utf-8 \x1b[0m\n"
    result = {"status": "passed", "duration": 1.25, "detail": "no issues"}
    assert c.record_pass("lint", p, result, output) is None
    got = c.lookup("lint", parts())
    assert got.warnings == () and got.reason == "cached" and got.replayable
    assert got.entry is not None
    assert got.entry.output == output and got.entry.output_dropped == 0
    assert got.entry.result == result and got.entry.name == "lint"
    assert got.entry.parts() == p
    changed = parts(files={"src/a.py": "9", "src/b.py": "2"})
    miss = c.lookup("lint", changed)
    assert miss.entry is None and miss.reason == "src/a.py changed"
    assert c.lookup("other", p) == Lookup()
    assert c.lookup("other", p).reason == "no earlier pass"


def test_many_keys_per_check_replay_each(tmp_path: Path) -> None:
    """Content-addressed: a pass of every state a check passed on (branch A, branch B) is
    kept, and each replays when its state comes back; the head explains misses against the
    last pass."""
    c = cache(tmp_path)
    a = parts(files={"src/a.py": "A"})
    b = parts(files={"src/a.py": "B"})
    c.record_pass("t", a, {"on": "A"}, b"A")
    c.record_pass("t", b, {"on": "B"}, b"B")
    for key, on in ((a, "A"), (b, "B"), (a, "A")):
        got = c.lookup("t", key)
        assert got.entry is not None and got.entry.result == {"on": on}
    assert c.lookup("t", parts(files={"src/a.py": "C"})).reason == "src/a.py changed"
    # Another check with the very same key has entries of its own.
    assert c.lookup("u", a).entry is None


def test_output_keeps_the_end(tmp_path: Path) -> None:
    c = cache(tmp_path, max_output=10)
    c.record_pass("t", parts(), {}, b"0123456789abcdef")
    entry = c.lookup("t", parts()).entry
    assert entry is not None and entry.output == b"6789abcdef" and entry.output_dropped == 6


def test_not_passed_removes_the_pass_of_that_key_only(tmp_path: Path) -> None:
    c = cache(tmp_path)
    other = parts(files={"x": "1"})
    c.record_pass("t", parts(), {}, b"")
    c.record_pass("t", other, {}, b"")
    assert c.record_not_passed("t", "flaky", parts()) is None
    got = c.lookup("t", parts())
    assert got.entry is None and got.warnings == ()
    assert got.reason == "last run was flaky"
    # The pass of another state is still true of that state.
    assert c.lookup("t", other).entry is not None
    c.record_pass("t", parts(), {}, b"")
    assert c.lookup("t", parts()).replayable
    with pytest.raises(ValueError):
        c.record_not_passed("t", "skipped", parts())


def test_read_only_store_writes_nothing(tmp_path: Path) -> None:
    c = cache(tmp_path)
    c.record_pass("t", parts(), {}, b"")
    entry = c.lookup("t", parts()).entry
    assert entry is not None
    os.utime(c.entry_path(entry.address), (1_000_000, 1_000_000))
    before = snapshot(tmp_path / "cache")
    ro = cache(tmp_path, read_only=True, max_bytes=1)
    assert ro.lookup("t", parts()).replayable
    assert ro.record_pass("t", parts(files={}), {}, b"") is None
    assert ro.record_not_passed("t", "failed", parts()) is None
    ro.mark_used(entry)
    assert ro.evict() == 0
    assert snapshot(tmp_path / "cache") == before


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    "names",
    [
        ("a/b", "a-b", "a_b", "a b"),
        ("tests[1/2]", "tests[2/2]", "tests_1_2_"),
        ("ü", "ö", "..", ".", ""),
        ("x" * 300, "x" * 299 + "y"),
    ],
)
def test_entry_files_are_safe_and_distinct(tmp_path: Path, names: tuple[str, ...]) -> None:
    c = cache(tmp_path)
    for i, name in enumerate(names):
        assert c.record_pass(name, parts(definition={"i": i}), {"i": i}, b"") is None
    heads = list((tmp_path / "cache" / "heads").iterdir())
    entries = list((tmp_path / "cache" / "entries").rglob("*.entry"))
    assert len(heads) == len(entries) == len(names)
    assert all(len(f.name) < 100 for f in heads + entries)
    for i, name in enumerate(names):
        entry = c.lookup(name, parts(definition={"i": i})).entry
        assert entry is not None and entry.result == {"i": i}


def valid_entry(tmp_path: Path) -> tuple[Store, Path, bytes]:
    c = cache(tmp_path)
    c.record_pass("lint", parts(), {"x": 1}, b"abcdefgh")
    path = c.entry_path(c.address("lint", parts().digest()))
    return c, path, path.read_bytes()


def rebuilt(raw: bytes, change: Callable[[list[bytes]], list[bytes]]) -> bytes:
    """An entry whose content was altered *and* its digest recomputed to match: what a
    writer that means harm, or a bug, would leave."""
    head, _, body = raw.partition(b"\n")
    plain = change(zlib.decompress(body).split(b"\n", 2))
    new = zlib.compress(b"\n".join(plain))
    header = json.loads(head)
    header.update(sha256=hashlib.sha256(new).hexdigest(), size=len(new))
    return json.dumps(header).encode() + b"\n" + new


def meta(raw: bytes, old: bytes, new: bytes) -> bytes:
    """:func:`rebuilt` with ``old`` replaced by ``new`` in the entry's own description."""
    return rebuilt(raw, lambda p: [p[0].replace(old, new), *p[1:]])


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        (lambda raw: b"", "corrupt"),
        (lambda raw: b"\x00\xff\xfe garbage", "corrupt"),
        (lambda raw: b"[1, 2]\n", "corrupt"),
        (lambda raw: b"[" * 100_000, "corrupt"),
        (lambda raw: raw[:-5], "wrong size"),
        (lambda raw: raw + b"junk", "wrong size"),
        (lambda raw: raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:], "own digest"),
        (lambda raw: raw.replace(b'"format":3', b'"format":99'), "format 99"),
        (lambda raw: meta(raw, b'"lint"', b'"lonk"'), "another check"),
        (lambda raw: meta(raw, b'"key":"', b'"key":"0'), "another key"),
        (lambda raw: meta(raw, b'"result"', b'"r"'), "corrupt"),
        (lambda raw: rebuilt(raw, lambda p: [*p[:2], b'"\\ud800xy"']), "corrupt"),
        (lambda raw: rebuilt(raw, lambda p: [*p[:2], b"12"]), "corrupt"),
        (lambda raw: rebuilt(raw, lambda p: [b"x"]), "corrupt"),
    ],
)  # fmt: skip
def test_damaged_or_altered_entry_is_a_miss_with_a_warning(
    tmp_path: Path, damage: Callable[[bytes], bytes], what: str
) -> None:
    c, path, raw = valid_entry(tmp_path)
    path.write_bytes(damage(raw))
    got = c.lookup("lint", parts())
    assert got.entry is None and not got.replayable
    assert len(got.warnings) >= 1
    warning = got.warnings[0]
    assert what in warning and "\n" not in warning and "'lint'" in warning, warning
    assert got.reason in ("earlier entry unreadable", "earlier pass unreadable")


def test_an_entry_carrying_another_key_still_answers_only_its_own(tmp_path: Path) -> None:
    """The digest is the key: an entry filed under it is replayed for it alone. The full key it
    carries only explains misses -- altered (its own digest recomputed), it no longer reads
    back as that digest, and a miss says the earlier pass is unreadable instead of naming a
    change it cannot vouch for."""
    c, path, raw = valid_entry(tmp_path)
    path.write_bytes(rebuilt(raw, lambda p: [p[0], p[1].replace(b'"1"', b'"9"'), p[2]]))
    got = c.lookup("lint", parts())
    assert got.entry is not None and got.replayable
    assert got.entry.parts() is None
    other = parts(files={"a.py": "d2"})
    assert c.lookup("lint", other).entry is None


def test_entry_filed_under_another_key_is_not_replayed(tmp_path: Path) -> None:
    """An entry copied (by hand, by a broken sync) to the address of another key answers
    its own key, not that one."""
    c, path, _ = valid_entry(tmp_path)
    other = parts(files={})
    target = c.entry_path(c.address("lint", other.digest()))
    target.parent.mkdir(parents=True, exist_ok=True)
    path.replace(target)
    got = c.lookup("lint", other)
    assert got.entry is None and "another key" in got.warnings[0]


def test_damaged_head_is_a_warning(tmp_path: Path) -> None:
    c, _, _ = valid_entry(tmp_path)
    c.head_path("lint").write_text("{")
    got = c.lookup("lint", parts(files={}))
    assert got.entry is None and got.reason == "earlier entry unreadable"
    assert "damaged head" in got.warnings[0]
    assert c.lookup("lint", parts()).replayable  # the pass itself is fine


def test_unreadable_entry_is_a_warning(tmp_path: Path) -> None:
    c = cache(tmp_path)
    c.entry_path(c.address("lint", parts().digest())).mkdir(parents=True)
    got = c.lookup("lint", parts())
    assert got.entry is None and "unreadable" in got.warnings[0]


def test_result_that_is_not_json_is_a_warning(tmp_path: Path) -> None:
    c = cache(tmp_path)
    warning = c.record_pass("lint", parts(), {"x": object()}, b"")
    assert warning is not None and "not JSON data" in warning and "\n" not in warning
    assert c.lookup("lint", parts()) == Lookup()
    assert c.record_pass("lint", parts(), {"x": float("nan")}, b"") is None
    entry = c.lookup("lint", parts()).entry
    assert entry is not None and entry.result["x"] != entry.result["x"]  # NaN


def test_write_failure_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the directory should be")
    c = cache(tmp_path)
    warning = c.record_pass("lint", parts(), {}, b"")
    assert warning is not None and "not cached this time" in warning and "\n" not in warning
    assert c.record_not_passed("lint", "failed", parts()) is not None
    assert c.lookup("lint", parts()).warnings == ()  # nothing there: a plain miss
    assert c.evict() == 0
    c.clear()


def test_a_full_disk_is_a_warning_and_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import pytest_parex.files

    real = pytest_parex.files.write_atomic
    c = cache(tmp_path)

    def full(path: Path, data: str | bytes, *, durable: bool = True) -> None:
        # Half the entry reaches the disk, then there is no room left.
        real(path.with_name(path.name + ".partial"), data[: len(data) // 2], durable=durable)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pytest_parex.files, "write_atomic", full)
    warning = c.record_pass("lint", parts(), {}, b"x" * 1000)
    assert warning is not None and "No space left on device" in warning
    monkeypatch.setattr(pytest_parex.files, "write_atomic", real)
    got = c.lookup("lint", parts())
    assert got.entry is None and got.reason == "no earlier pass" and got.warnings == ()


@given(st.binary(max_size=300))
@settings(
    database=None,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_garbage_never_raises_or_replays(tmp_path: Path, garbage: bytes) -> None:
    c = cache(tmp_path)
    for path in (c.entry_path(c.address("x", parts().digest())), c.head_path("x")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(garbage)
    got = c.lookup("x", parts())
    assert not got.replayable and isinstance(got.reason, str)


def entry_of(c: Store, name: str, key: KeyParts | None = None) -> Path:
    return c.entry_path(c.address(name, (key or parts()).digest()))


def set_used(c: Store, name: str, when: float) -> None:
    os.utime(entry_of(c, name), (when, when))


def test_evict_least_recently_used_until_the_size_fits(tmp_path: Path) -> None:
    now = 2_000_000.0
    c = cache(tmp_path, max_bytes=10**9, clock=lambda: now)
    for i in range(5):
        c.record_pass(f"c{i}", parts(), {}, os.urandom(300))  # incompressible: one size
        set_used(c, f"c{i}", 1_000_000 + i)
    set_used(c, "c0", 1_900_000)  # replayed recently: kept
    sizes = {f"c{i}": entry_of(c, f"c{i}").stat().st_size for i in range(5)}
    c.max_bytes = sizes["c0"] + sizes["c3"] + sizes["c4"]
    assert c.evict() == 2
    kept = [n for n in sizes if c.lookup(n, parts()).entry]
    assert kept == ["c0", "c3", "c4"]
    assert sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.entry")) <= c.max_bytes


def test_evict_drops_entries_and_heads_unused_for_too_long(tmp_path: Path) -> None:
    now = 10_000_000.0
    c = cache(tmp_path, max_age=3600.0, clock=lambda: now)
    c.record_pass("old", parts(), {}, b"")
    c.record_pass("new", parts(), {}, b"")
    set_used(c, "old", now - 3601)
    set_used(c, "new", now - 10)
    os.utime(c.head_path("old"), (now - 3601, now - 3601))
    assert c.evict() == 1
    assert c.lookup("old", parts()).entry is None and not c.head_path("old").exists()
    assert c.lookup("new", parts()).entry is not None


def test_mark_used_makes_an_entry_recent(tmp_path: Path) -> None:
    c = cache(tmp_path)
    c.record_pass("old", parts(), {}, os.urandom(200))
    c.record_pass("new", parts(), {}, os.urandom(200))
    set_used(c, "old", 1_000_000)
    set_used(c, "new", 1_000_001)
    entry = c.lookup("old", parts()).entry
    assert entry is not None
    c.mark_used(entry)
    c.max_bytes = entry_of(c, "old").stat().st_size
    c.evict()
    assert c.lookup("old", parts()).entry is not None and c.lookup("new", parts()).entry is None


def test_evict_removes_stale_temp_files_and_clear_removes_all(tmp_path: Path) -> None:
    c = cache(tmp_path)
    c.record_pass("a", parts(), {}, b"")
    folder = entry_of(c, "a").parent
    stale = folder / ".x.entry.abc.tmp"
    fresh = folder / ".y.entry.def.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    os.utime(stale, (1_000_000, 1_000_000))
    assert c.evict() == 0
    assert not stale.exists() and fresh.exists() and c.lookup("a", parts()).entry is not None
    c.clear()
    assert list((tmp_path / "cache").rglob("*.entry")) == []
    assert not (tmp_path / "cache" / "heads").exists()


def check_consistent(got: Lookup) -> None:
    """An entry read while others write is whole: its result names its own digest."""
    assert got.warnings == (), got.warnings
    if got.entry is not None:
        assert got.entry.result["digest"] == got.entry.digest
        assert got.entry.output == got.entry.digest.encode() * 50


def hammer(c: Store, writer: int, rounds: int) -> None:
    for i in range(rounds):
        name = f"check[{i % 3}/3]"
        p = parts(definition={"i": i % 4})
        if i % 5 == 4:
            c.record_not_passed(name, "failed", p)
        else:
            c.record_pass(name, p, {"digest": p.digest()}, p.digest().encode() * 50)
        other = parts(definition={"i": (i + 1) % 4})
        check_consistent(c.lookup(f"check[{(i + 1) % 3}/3]", other))
        if i % 7 == 0:
            c.evict()


def test_concurrent_threads_never_see_a_torn_entry(tmp_path: Path) -> None:
    c = cache(tmp_path, max_bytes=4000)
    errors: list[BaseException] = []

    def run(writer: int) -> None:
        try:
            hammer(c, writer, 150)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(3):
        check_consistent(c.lookup(f"check[{i}/3]", parts(definition={"i": 0})))
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_two_gates_share_one_store(tmp_path: Path) -> None:
    """Two processes writing, replaying, failing and evicting in one store at once: every
    lookup sees a whole entry or none, never a torn one, never a warning."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from test_cache_store import cache, hammer
        hammer(cache(Path(sys.argv[1]), max_bytes=4000), int(sys.argv[2]), 300)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(w)]) for w in range(2)
    ]
    try:
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0, 0]
    c = cache(tmp_path)
    for i in range(3):
        check_consistent(c.lookup(f"check[{i}/3]", parts(definition={"i": 1})))


def test_lookup_in_a_large_store_reads_one_entry(tmp_path: Path) -> None:
    """The store's size does not matter to a lookup: it reads the one file its key names."""
    c = cache(tmp_path)
    for i in range(300):
        c.record_pass(f"c{i % 3}", parts(definition={"i": i}), {}, b"")
    opened: list[str] = []
    real_open = open

    def spy(path: Any, *args: Any, **kw: Any) -> Any:
        opened.append(str(path))
        return real_open(path, *args, **kw)

    import builtins

    builtins_open = builtins.open
    builtins.open = spy
    try:
        assert c.lookup("c1", parts(definition={"i": 151})).replayable
    finally:
        builtins.open = builtins_open
    assert len(opened) == 1 and opened[0].endswith(".entry")


# ------------------------------------------------------------------------------ model test

PATHS = (
    "README.md",
    "src/a.py",
    "src/b.py",
    "src/pkg/c.py",
    "src/notes.txt",
    "data/x.csv",
    "data/y.csv",
    "docs/index.md",
)
CHECKS: dict[str, tuple[str, ...] | None] = {
    "py": ("src/**/*.py",),
    "data": ("data/*.csv",),
    "docs": ("docs", "README.md"),
    "all": None,  # no reads: every project file
}


def model_inputs(check: str, content: dict[str, bytes], in_git: bool) -> dict[str, bytes]:
    def selected(p: str) -> bool:
        if check == "py":
            return p.startswith("src/") and p.endswith(".py")
        if check == "data":
            return p.startswith("data/") and p.count("/") == 1 and p.endswith(".csv")
        if check == "docs":
            return p.startswith("docs/") or p == "README.md"
        # git ignores data/ (see .gitignore); a walk sees it.
        return not (in_git and p.startswith("data/"))

    return {p: b for p, b in content.items() if selected(p)}


MID_EDIT = ("write-keep-mtime", "src/a.py", b"ab")
contents = st.sampled_from([b"aa", b"ab", b"ba", b"bb", b"", b"abc"])  # mostly one size
paths = st.sampled_from(PATHS)
edits = st.one_of(
    st.tuples(st.just("write"), paths, contents),
    st.tuples(st.just("write-keep-mtime"), paths, contents),
    st.tuples(st.just("touch"), paths),
    st.tuples(st.just("rename"), paths, paths),
    st.tuples(st.just("delete"), paths),
)
ops = st.one_of(
    edits,
    st.tuples(st.just("redefine"), st.sampled_from(sorted(CHECKS))),
    # A run: the outcome of each check, and edits made while the checks run (after the keys
    # were computed, before the index is saved: a check or the user writing into the tree).
    st.tuples(
        st.just("run"),
        st.lists(st.booleans(), min_size=4, max_size=4),
        st.lists(edits, max_size=3),
    ),
)


@contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def tick_past(probe: Path, ctime_ns: int) -> None:
    """Wait until the file system's clock is past ``ctime_ns``: a later change then gets a
    later ctime (in a real run, the racy window guarantees what this waits for)."""
    probe.write_bytes(b"")
    while probe.stat().st_mtime_ns <= ctime_ns:
        probe.write_bytes(b"")


class World:
    def __init__(self, base: Path, *, in_git: bool, aged: bool) -> None:
        self.root = base / "tree"
        self.state = base / "state"
        self.root.mkdir()
        self.state.mkdir()
        self.in_git = in_git
        self.aged = aged
        self.content: dict[str, bytes] = {}
        self.definitions = dict.fromkeys(CHECKS, 0)
        # Every state each check passed on and did not fail on since: the store keeps them
        # all (content-addressed), so any of them comes back as a replay.
        self.passes: dict[str, set[tuple[int, frozenset[tuple[str, bytes]]]]] = {
            name: set() for name in CHECKS
        }
        self.cache = Store(self.state / "results", max_bytes=10**8, max_age=10**9)
        if in_git:
            subprocess.run(["git", "init", "-q"], cwd=self.root, check=True)
            (self.root / ".gitignore").write_text("data/\n")
            self.content[".gitignore"] = b"data/\n"

    def changed(self, rel: str) -> None:
        if self.aged:
            tick_past(self.state / "probe", (self.root / rel).lstat().st_ctime_ns)

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind in ("write", "write-keep-mtime"):
            rel, data = op[1], op[2]
            path = self.root / rel
            old = path.lstat() if path.exists() else None
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if kind == "write-keep-mtime" and old is not None:
                os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
            self.content[rel] = data
            self.changed(rel)
        elif kind == "touch" and op[1] in self.content:
            path = self.root / op[1]
            mtime = path.lstat().st_mtime_ns + 10**9
            os.utime(path, ns=(mtime, mtime))
            self.changed(op[1])
        elif kind == "rename" and op[1] in self.content and op[1] != op[2]:
            target = self.root / op[2]
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.root / op[1], target)
            self.content[op[2]] = self.content.pop(op[1])
            self.changed(op[2])
        elif kind == "delete" and op[1] in self.content and op[1] != ".gitignore":
            (self.root / op[1]).unlink()
            del self.content[op[1]]
        elif kind == "redefine":
            self.definitions[op[1]] += 1
        elif kind == "run":
            self.run(op[1], op[2])

    def run(self, outcomes: list[bool], meanwhile: list[tuple[Any, ...]]) -> None:
        """One gate run in a fresh process: load the index, compute every key, compare with
        the model, run what is not replayed and record its outcome."""
        index_path = self.state / "index.json"
        if self.aged:
            index, warning = FileIndex.load(index_path, clock=aged_clock, racy_window_ns=0)
        else:
            index, warning = FileIndex.load(index_path)
        assert warning is None
        for (name, reads), passed in zip(sorted(CHECKS.items()), outcomes, strict=True):
            # No reads: every project file (the gate's safe default).
            files = project_files(self.root) if reads is None else matching_files(self.root, reads)
            key = KeyParts(
                definition={"reads": reads, "version": self.definitions[name]},
                files=index.digests(self.root, files),
            )
            got = self.cache.lookup(name, key)
            assert got.warnings == ()
            inputs = model_inputs(name, self.content, self.in_git)
            current = (self.definitions[name], frozenset(inputs.items()))
            expected = current in self.passes[name]
            assert got.replayable == expected, (name, got.reason)
            if got.entry is not None:
                self.cache.mark_used(got.entry)
                continue
            assert got.reason not in ("cached", "unchanged")
            if passed:
                self.cache.record_pass(name, key, {"ok": True}, b"out")
                self.passes[name].add(current)
            else:
                self.cache.record_not_passed(name, "failed", key)
                self.passes[name].discard(current)
        for edit in meanwhile:
            self.apply(edit)
        assert index.save(index_path) is None
        if self.aged and index_path.exists():
            tick_past(self.state / "probe", index_path.stat().st_mtime_ns)


@pytest.mark.parametrize(
    ("in_git", "aged"), [(False, False), (False, True), (True, False), (True, True)]
)
def test_replayed_iff_definition_and_inputs_equal_the_last_pass(
    in_git: bool, aged: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random edits, touches, edits with the mtime restored, renames and deletes against four
    checks: a check is replayed exactly when its definition and the content of its inputs are
    those of a pass it had (any of them: edits reverted, a state come back) and did not fail
    on since. ``aged`` runs the stat shortcut on a clock an hour ahead (every
    entry trusted), waiting for the file system's clock to tick after each change; the real
    clock exercises the racy window."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", tempfile.gettempdir())
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")

    @given(st.lists(ops, max_size=30))
    # An edit that keeps size and mtime, made after hashing and before the index is saved:
    # only the ctime in the stored stat tells.
    @example([("write", "src/a.py", b"aa"), ("run", [True] * 4, [MID_EDIT])])
    @settings(max_examples=12 if in_git else 25, deadline=None, database=None)
    def scenario(steps: list[tuple[Any, ...]]) -> None:
        with scratch() as base:
            world = World(base, in_git=in_git, aged=aged)
            for step in [*steps, ("run", [True] * 4, []), ("run", [True] * 4, [])]:
                world.apply(step)

    scenario()


def test_entry_is_frozen() -> None:
    entry = Entry("n", "d", {}, b"", 0, 0.0, 0.0)
    with pytest.raises(AttributeError):
        entry.name = "m"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("line", "programs"),
    [
        ("ruff check . && mypy src", ["ruff", "mypy"]),
        ("A=1 python x | sort; (cd s && make) || echo", ["python", "sort", "cd", "make", "echo"]),
        ("if true; then node x.js; fi", ["true", "node"]),
        ("cat x > out.txt && wc -l < out.txt", ["cat", "wc"]),
        ('echo "unterminated', []),
    ],
)  # fmt: skip
def test_every_program_of_a_shell_line_is_a_tool(line: str, programs: list[str]) -> None:
    """A ``shell = true`` check is keyed by every program its line starts, not the first
    word's alone (``ruff check . && mypy src``: an upgraded mypy reruns it)."""
    from pytest_parex.cache.key import _programs
    from pytest_parex.config import Check

    assert _programs(Check(name="x", agent="a", argv=(line,), shell=True)) == programs
