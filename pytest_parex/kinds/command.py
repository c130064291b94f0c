"""``kind = "command"``: any command; exit code 0 passes."""

from __future__ import annotations

from pytest_parex.kinds.base import Kind


class CommandKind(Kind):
    name = "command"
    agent = "code-reviewer"


KIND = CommandKind()
