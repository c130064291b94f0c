"""Hooks the gate runs natively: started as a script (``python -I -S native.py COMMAND ...``),
so it imports nothing but the standard library -- not even this package.

* ``pygrep [-i|--ignore-case] [--multiline] [--negate] PATTERN FILE...`` -- a regex search
  whose matches are problems: each matching line is printed as ``FILE:LINE:TEXT`` and the exit
  code is 1; with ``--multiline`` the pattern runs on the whole file (``re.MULTILINE |
  re.DOTALL``) and the first match is printed from its line on; with ``--negate`` a file
  *without* a match is the problem (its name is printed).
* ``fail MESSAGE FILE...`` -- ``language: fail``: prints the message and the files, exit 1.
* ``identity ARG...`` -- the meta hook: prints its arguments, exit 0.
* ``report CODE LINE...`` -- a verdict computed when the gate was configured (the meta hooks
  ``check-hooks-apply`` and ``check-useless-excludes``): prints the lines, exits with CODE.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)


def _by_line(pattern: re.Pattern[bytes], name: str) -> int:
    found = 0
    with open(name, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if pattern.search(line):
                found = 1
                _write(name.encode("utf-8", "surrogateescape") + b":%d:" % number)
                _write(line.rstrip(b"\r\n") + b"\n")
    return found


def _whole(pattern: re.Pattern[bytes], name: str) -> int:
    with open(name, "rb") as fh:
        content = fh.read()
    match = pattern.search(content)
    if match is None:
        return 0
    index = content[: match.start()].count(b"\n")
    lines = match.group(0).split(b"\n")
    lines[0] = content.split(b"\n")[index]
    _write(name.encode("utf-8", "surrogateescape") + b":%d:" % (index + 1))
    _write(b"\n".join(lines) + b"\n")
    return 1


def _has_match(pattern: re.Pattern[bytes], name: str, multiline: bool) -> bool:
    with open(name, "rb") as fh:
        if multiline:
            return pattern.search(fh.read()) is not None
        return any(pattern.search(line) for line in fh)


def pygrep(argv: Sequence[str]) -> int:
    flags = 0
    multiline = negate = False
    rest = list(argv)
    while rest and rest[0].startswith("-") and rest[0] != "--":
        option = rest.pop(0)
        if option in ("-i", "--ignore-case"):
            flags |= re.IGNORECASE
        elif option == "--multiline":
            multiline = True
        elif option == "--negate":
            negate = True
        else:
            sys.stderr.write(f"pygrep: unrecognized argument: {option}\n")
            return 2
    if rest and rest[0] == "--":
        rest.pop(0)
    if not rest:
        sys.stderr.write("pygrep: the pattern (the hook's entry) is missing\n")
        return 2
    if multiline:
        flags |= re.MULTILINE | re.DOTALL
    pattern = re.compile(rest[0].encode(), flags)
    code = 0
    for name in rest[1:]:
        if negate:
            if not _has_match(pattern, name, multiline):
                _write(name.encode("utf-8", "surrogateescape") + b"\n")
                code = 1
        else:
            code |= (_whole if multiline else _by_line)(pattern, name)
    return code


def main(argv: Sequence[str]) -> int:
    if not argv:
        sys.stderr.write("usage: native.py pygrep|fail|identity|report ...\n")
        return 2
    command, rest = argv[0], list(argv[1:])
    if command == "pygrep":
        return pygrep(rest)
    if command == "fail":
        message, names = (rest[0] if rest else ""), rest[1:]
        sys.stdout.write(f"{message}\n\n" + "".join(f"{n}\n" for n in names))
        return 1
    if command == "identity":
        sys.stdout.write("".join(f"{arg}\n" for arg in rest))
        return 0
    if command == "report":
        sys.stdout.write("".join(f"{line}\n" for line in rest[1:]))
        return int(rest[0]) if rest else 0
    sys.stderr.write(f"native.py: unknown command {command!r}\n")
    return 2


if __name__ == "__main__":
    sys.stdout.flush()
    raise SystemExit(main(sys.argv[1:]))
