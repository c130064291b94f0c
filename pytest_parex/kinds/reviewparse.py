"""Turn the output of review tools (ruff, mypy, flake8-style linters) into issues.

Every parser is best effort and never raises on unexpected input: a review
check's verdict comes from the tool's exit code, the issues only explain it, so
an unparsable line is skipped rather than turned into a crash of the gate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from pytest_parex.files import relative_posix

__all__ = [
    "Issue",
    "detect_tool",
    "machine_readable_argv",
    "parse_generic",
    "parse_mypy",
    "parse_ruff_format_check",
    "parse_ruff_json",
    "program_name",
    "summarize",
]

SEVERITIES = ("error", "warning", "note")


@dataclass(frozen=True)
class Issue:
    """One finding of a review tool."""

    path: str
    line: int | None
    column: int | None
    code: str
    message: str
    severity: str  # "error" | "warning" | "note"
    end_line: int | None = None
    """Where the finding's span ends (the tool says so: ruff, mypy ``--show-error-end``)."""
    end_column: int | None = None
    """The column just after the span (ruff's and SARIF's convention)."""
    url: str = ""
    """The rule's documentation, when the tool names it (ruff's JSON does)."""

    def format(self) -> str:
        """Render as ``path:line: code message``, dropping the parts that are missing.

        The column is left out on purpose: the line is enough to find the spot,
        and a shorter prefix keeps summaries readable.
        """
        location = self.path
        if self.line is not None:
            location = f"{location}:{self.line}" if location else f"line {self.line}"
        text = " ".join(part for part in (self.code, self.message) if part)
        return f"{location}: {text}" if location else text


# --- shared helpers -------------------------------------------------------------------


def _relative(path: str, root: Path | None) -> str:
    """Return *path* relative to *root* when it lies under it, else unchanged."""
    if root is None or not path:
        return path
    if not Path(path).is_absolute():
        return path
    return relative_posix(path, root) or path


def _int_or_none(value: object) -> int | None:
    # bool is an int subclass; a JSON ``true`` is never a line number.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _severity(value: object, default: str = "error") -> str:
    text = str(value).lower() if value is not None else ""
    return text if text in SEVERITIES else default


# --- ruff -----------------------------------------------------------------------------

# ``path:line:col: CODE message`` (ruff ``concise``; also flake8 and pylint).
_LOCATED = re.compile(r"^(?P<path>\S.*?):(?P<line>\d+)(?::(?P<col>\d+))?:\s*(?P<rest>.*)$")
# ruff ``full`` format: a header line ``CODE [*] message`` then `` --> path:line:col``.
_ARROW = re.compile(r"^\s*-->\s*(?P<path>.+?):(?P<line>\d+)(?::(?P<col>\d+))?\s*$")
_RUFF_HEADER = re.compile(r"^(?P<code>[A-Za-z][\w-]*?)(?::|\s+\[\*\])?\s+(?P<msg>\S.*)$")
_RUFF_CODE = re.compile(r"^(?P<code>[A-Z]+\d+|[a-z]+(?:-[a-z]+)*):?(?:\s+\[\*\])?\s+(?P<msg>.*)$")


def _json_values(text: str) -> Iterator[Any]:
    """Yield the JSON documents in *text*: one array, or one object per line.

    Tools may print warnings before their JSON when stderr is merged into
    stdout, so the array is searched for at the start of a line instead of
    requiring the whole text to be JSON.
    """
    decoder = json.JSONDecoder()
    stripped = text.strip()
    start = 0 if stripped.startswith("[") else stripped.find("\n[") + 1
    if stripped.startswith("[") or start > 0:
        try:
            value, _ = decoder.raw_decode(stripped, start)
        except ValueError:
            pass
        else:
            yield value
            return
    for line in stripped.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def _ruff_issue(entry: object, root: Path | None) -> Issue | None:
    if not isinstance(entry, dict) or "filename" not in entry:
        return None  # e.g. ``--statistics`` rows, which have no location
    location = entry.get("location")
    location = location if isinstance(location, dict) else {}
    end = entry.get("end_location")
    end = end if isinstance(end, dict) else {}
    url = entry.get("url")
    # Older ruff reports syntax errors with ``"code": null``; newer ones say
    # ``invalid-syntax``: use the newer name so both read the same.
    code = entry.get("code") or "invalid-syntax"
    return Issue(
        path=_relative(str(entry["filename"]), root),
        line=_int_or_none(location.get("row")),
        column=_int_or_none(location.get("column")),
        code=str(code),
        message=str(entry.get("message") or ""),
        # ruff fails the run for every reported diagnostic, so they are errors
        # unless a (newer) ruff says otherwise.
        severity=_severity(entry.get("severity")),
        end_line=_int_or_none(end.get("row")),
        end_column=_int_or_none(end.get("column")),
        url=url if isinstance(url, str) else "",
    )


def _parse_ruff_text(text: str, root: Path | None) -> list[Issue]:
    """Parse ruff's human formats (``concise`` and ``full``)."""
    issues: list[Issue] = []
    header: re.Match[str] | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        arrow = _ARROW.match(line)
        if arrow and header is not None:
            issues.append(
                Issue(
                    path=_relative(arrow["path"], root),
                    line=int(arrow["line"]),
                    column=int(arrow["col"]) if arrow["col"] else None,
                    code=header["code"],
                    message=header["msg"],
                    severity="error",
                )
            )
            header = None
            continue
        located = _LOCATED.match(line)
        if located:
            coded = _RUFF_CODE.match(located["rest"])
            issues.append(
                Issue(
                    path=_relative(located["path"], root),
                    line=int(located["line"]),
                    column=int(located["col"]) if located["col"] else None,
                    code=coded["code"] if coded else "",
                    message=coded["msg"] if coded else located["rest"],
                    severity="error",
                )
            )
            header = None
        elif line and not line[0].isspace() and line[0] != "|":
            # Remember a possible ``full`` header; the next ``-->`` line confirms it.
            header = _RUFF_HEADER.match(line)
    return issues


def parse_ruff_json(text: str, root: Path | None = None) -> list[Issue]:
    """Parse ``ruff check --output-format=json`` (or ``json-lines``) output.

    Paths under *root* are made relative to it. Text that is not JSON (the
    user chose another ``--output-format``) falls back to the text parser.
    """
    issues: list[Issue] = []
    found_json = False
    for value in _json_values(text):
        found_json = True
        for entry in value if isinstance(value, list) else [value]:
            issue = _ruff_issue(entry, root)
            if issue is not None:
                issues.append(issue)
    return issues if found_json else _parse_ruff_text(text, root)


_WOULD_REFORMAT = re.compile(r"^\s*Would reformat:\s*(?P<path>.+?)\s*$")


def parse_ruff_format_check(text: str, root: Path | None = None) -> list[Issue]:
    """Parse ``ruff format --check`` output into one issue per unformatted file.

    Ruff before 0.9-ish printed ``Would reformat: path``; newer releases print
    diagnostics (``unformatted: File would be reformatted`` / ``--> path:1:1``),
    or JSON with ``--output-format=json``. All of them are accepted.
    """
    issues: list[Issue] = []
    for line in text.splitlines():
        if match := _WOULD_REFORMAT.match(line):
            issues.append(_unformatted(_relative(match["path"], root)))
    if issues:
        return issues
    # Newer ruff: the same diagnostics as ``ruff check``, in whichever format.
    for diagnostic in parse_ruff_json(text, root):
        if diagnostic.code == "unformatted":
            issues.append(_unformatted(diagnostic.path))
        else:  # e.g. a syntax error that stops formatting: keep it as reported
            issues.append(diagnostic)
    return issues


def _unformatted(path: str) -> Issue:
    # No line: the whole file is reformatted, whatever position ruff points at.
    return Issue(path, None, None, "format", "would reformat", "error")


# --- mypy -----------------------------------------------------------------------------

# ``path:line[:col[:end_line:end_col]]: severity: message  [code]``; the line is
# optional because mypy reports some file-level errors (unreadable file,
# duplicate module) without one.
_MYPY = re.compile(
    r"^(?P<path>\S.*?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?(?::(?P<eline>\d+):(?P<ecol>\d+))?:"
    r" (?P<sev>error|warning|note): (?P<msg>.*)$"
)
_MYPY_CODE = re.compile(r"^(?P<msg>.*?)\s+\[(?P<code>[a-z][\w-]*)\]$")
_MYPY_SUMMARY = re.compile(r"^(Found \d+ errors? in|Success: no issues found)")


def _mypy_json_issue(entry: object, root: Path | None) -> Issue | None:
    if not isinstance(entry, dict) or "file" not in entry or "message" not in entry:
        return None
    column = _int_or_none(entry.get("column"))
    message = str(entry["message"])
    if entry.get("hint"):
        message = f"{message} ({entry['hint']})"
    line = _int_or_none(entry.get("line"))
    return Issue(
        path=_relative(str(entry["file"]), root),
        line=line if line is None or line > 0 else None,
        # JSON columns are 0-based while the text format's are 1-based: align them.
        column=column + 1 if column is not None and column >= 0 else None,
        code=str(entry.get("code") or ""),
        message=message,
        severity=_severity(entry.get("severity")),
    )


def _mypy_issue(match: re.Match[str], message: str, root: Path | None) -> Issue:
    coded = _MYPY_CODE.match(message)
    return Issue(
        path=_relative(match["path"], root),
        line=int(match["line"]) if match["line"] else None,
        column=int(match["col"]) if match["col"] else None,
        code=coded["code"] if coded else "",
        message=coded["msg"] if coded else message,
        severity=match["sev"],
        end_line=int(match["eline"]) if match["eline"] else None,
        # mypy's end column is the span's last character; the span ends just after it.
        end_column=int(match["ecol"]) + 1 if match["ecol"] else None,
    )


def parse_mypy(text: str, root: Path | None = None) -> list[Issue]:
    """Parse mypy's line format, including ``--pretty`` wrapping, or ``-O json`` lines."""
    issues: list[Issue] = []
    # (match, message parts) of an issue whose message may continue on the next
    # lines: ``--pretty`` wraps long messages without indenting them.
    pending: tuple[re.Match[str], list[str]] | None = None

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            issues.append(_mypy_issue(pending[0], " ".join(pending[1]), root))
            pending = None

    for raw in text.splitlines():
        line = raw.rstrip()
        if line.lstrip().startswith("{"):
            flush()
            try:
                issue = _mypy_json_issue(json.loads(line), root)
            except ValueError:
                issue = None
            if issue is not None:
                issues.append(issue)
            continue
        match = _MYPY.match(line)
        if match:
            flush()
            pending = (match, [match["msg"]])
        elif (
            pending is not None
            and line
            and not line[0].isspace()
            and not _MYPY_SUMMARY.match(line)
            and not _MYPY_CODE.match(pending[1][-1])
        ):
            pending[1].append(line.strip())
        else:
            flush()
    flush()
    return issues


# --- anything else --------------------------------------------------------------------

_GENERIC_CODE = re.compile(r"^(?P<code>[A-Z]+\d+):?\s+(?P<msg>.*)$")
_GENERIC_SEVERITY = re.compile(r"^(?P<sev>error|warning|note):\s*(?P<msg>.*)$", re.IGNORECASE)


def parse_generic(text: str, root: Path | None = None) -> list[Issue]:
    """Best effort for ``path:line[:col]: message`` lines (flake8, pylint, gcc style).

    A leading ``error:``/``warning:``/``note:`` sets the severity and a leading
    ``X123`` becomes the code. Codes starting with ``W`` (pycodestyle and pylint
    warnings) are warnings; everything else counts as an error because the tool
    reported it as a problem.
    """
    issues: list[Issue] = []
    for raw in text.splitlines():
        match = _LOCATED.match(raw.rstrip())
        if not match:
            continue
        rest, severity, code = match["rest"], "", ""
        if sev := _GENERIC_SEVERITY.match(rest):
            severity, rest = sev["sev"].lower(), sev["msg"]
        if coded := _GENERIC_CODE.match(rest):
            code, rest = coded["code"], coded["msg"]
        if not severity:
            severity = "warning" if code.startswith("W") else "error"
        issues.append(
            Issue(
                path=_relative(match["path"], root),
                line=int(match["line"]),
                column=int(match["col"]) if match["col"] else None,
                code=code,
                message=rest,
                severity=severity,
            )
        )
    return issues


# --- summary and command lines --------------------------------------------------------


def summarize(issues: Sequence[Issue]) -> str:
    """Summarize as ``no issues``, ``1 issue`` or ``3 issues (2 errors, 1 warning)``.

    Notes are context for other issues (mypy's "see also" lines), so they are
    not counted.
    """
    counted = [issue for issue in issues if issue.severity != "note"]
    if not counted:
        return "no issues"
    text = f"{len(counted)} issue{'s' if len(counted) != 1 else ''}"
    counts = {sev: sum(1 for i in counted if i.severity == sev) for sev in SEVERITIES}
    # Unknown severities (a hand-built Issue) count as issues but get no bucket.
    parts = [f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in counts.items() if n]
    return f"{text} ({', '.join(parts)})" if len(parts) > 1 else text


def _program(token: str) -> str:
    """``/usr/bin/ruff.exe`` -> ``ruff``."""
    name = PurePath(token.replace("\\", "/")).name.lower()
    return name.removesuffix(".exe")


# Words that launch another program (``python -m``, ``uv run``, ``env``): skipped
# while looking for the tool, so that ``uv run ruff check`` is recognised while
# ``tox -e mypy`` (not mypy's output) is not.
_LAUNCHERS = frozenset({"py", "uv", "uvx", "run", "poetry", "pdm", "hatch", "pipx", "rye", "env"})
_PYTHON = re.compile(r"^python[\d.]*[tw]?$")


def _tool_position(argv: Sequence[str]) -> tuple[str, int] | None:
    """Find ``ruff``/``mypy`` and its index in *argv*, directly, via ``-m`` or a launcher."""
    index = 0
    while index < len(argv):
        token = argv[index]
        program = _program(token)
        if token == "-m":
            module = argv[index + 1] if index + 1 < len(argv) else ""
            return (module, index + 1) if module in ("ruff", "mypy") else None
        if token in ("-X", "-W"):  # Python options that take a separate value
            index += 1
        elif program in ("ruff", "mypy"):
            return program, index
        elif not (
            token.startswith("-") or "=" in token or program in _LAUNCHERS or _PYTHON.match(program)
        ):
            return None
        index += 1
    return None


def program_name(argv: Sequence[str]) -> str:
    """The program ``argv`` runs, past launchers and interpreters: ``flake8`` for
    ``python -m flake8 src`` or ``uv run flake8``; "" when there is none."""
    index = 0
    while index < len(argv):
        token = argv[index]
        program = _program(token)
        if token == "-m":
            return argv[index + 1] if index + 1 < len(argv) else ""
        if token in ("-X", "-W"):  # Python options that take a separate value
            index += 1
        elif not (
            token.startswith("-") or "=" in token or program in _LAUNCHERS or _PYTHON.match(program)
        ):
            return program
        index += 1
    return ""


def detect_tool(argv: Sequence[str]) -> str | None:
    """Return ``"ruff-check"``, ``"ruff-format"``, ``"mypy"`` or ``None`` for a command line."""
    found = _tool_position(argv)
    if found is None:
        return None
    tool, index = found
    if tool == "mypy":
        return "mypy"
    # The subcommand may follow global options (``ruff --config x.toml check``);
    # the first known subcommand word wins.
    for token in argv[index + 1 :]:
        if token in ("check", "format"):
            return f"ruff-{token}"
    return None


def machine_readable_argv(argv: list[str]) -> list[str]:
    """Return *argv* changed so that its output is reliable to parse.

    * ``ruff check``: ``--output-format=json`` is added unless the user chose a
      format, since ruff's human format changes between releases (``full``
      became the default in 0.5, with multi-line snippets) while the JSON
      fields are stable. Modes whose JSON is not a list of diagnostics
      (``--statistics``, ``--show-settings``, ``--show-files``, ``--watch``)
      are left alone.
    * ``mypy``: left as is. ``-O json`` only exists in mypy >= 1.11 and an
      extra flag could conflict with the user's config, while the line
      format is stable and :func:`parse_mypy` reads it (``--pretty`` too).
    * ``ruff format``: left as is, ``--output-format`` for it is recent; all
      of its output shapes are parsed by :func:`parse_ruff_format_check`.

    The input list is never modified.
    """
    result = list(argv)
    if detect_tool(argv) != "ruff-check":
        return result
    found = _tool_position(argv)
    assert found is not None  # detect_tool found it
    skip = ("--statistics", "--show-settings", "--show-files", "--watch", "-w")
    chosen = any(
        token in ("--output-format", "--format")
        or token.startswith(("--output-format=", "--format="))
        for token in argv
    )
    if chosen or any(token in skip for token in argv):
        return result
    # Insert right after ``check`` so that it is never taken for a path after ``--``.
    position = result.index("check", found[1] + 1) + 1
    result.insert(position, "--output-format=json")
    return result
