"""Text helpers every output uses (pure): check data made safe to show, durations, paths,
the detail phrase of a result, and a rich console that renders into a string.

Check names and output are data: control characters (terminal escapes included) are shown
escaped, and rich renders them as :class:`rich.text.Text`, never as markup.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_parex.results import CACHED, CheckResult, Status

if TYPE_CHECKING:
    from rich.console import Console

# C0 controls except tab and newline, DEL, and C1 controls (0x9b is a one-byte CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

STATUS_STYLE: Mapping[str, str] = {
    Status.PASSED: "green",
    Status.FLAKY: "yellow",
    Status.FAILED: "red",
    Status.TIMEOUT: "red",
    Status.ERROR: "red",
    Status.SKIPPED: "yellow",
    Status.CANCELLED: "yellow",
    CACHED: "green",
}


def sanitize(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), so that output
    from a check can never move the cursor, change colours or set a window title."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def seconds(value: float) -> str:
    if value < 60:
        return f"{value:.2f}s"
    minutes, secs = divmod(value, 60)
    return f"{int(minutes)}m{secs:04.1f}s"


def rel(path: str, root: Path) -> str:
    if not path:
        return ""
    try:
        return os.path.relpath(path, root) if os.path.isabs(path) else path
    except ValueError:  # pragma: no cover - another drive on Windows
        return path


def detail_of(result: CheckResult) -> str:
    """The detail column: the check's figure, or why it did not run."""
    if result.status in (Status.SKIPPED, Status.CANCELLED, Status.ERROR) and result.reason:
        if result.detail and result.detail != result.reason:
            return f"{result.detail}; {result.reason}"
        return result.reason
    return result.detail


def string_console(buffer: io.StringIO, *, width: int, color: bool, **extra: Any) -> Console:
    """A rich console that renders into ``buffer`` (pytest's terminal writer owns stdout) and
    never interprets markup, emoji or highlighting in data."""
    # rich is imported when a rich rendering is asked for: plain runs never pay for it.
    from rich.console import Console

    return Console(
        file=buffer,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
        markup=False,
        **extra,
    )
