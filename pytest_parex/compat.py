"""The one place that reaches into pytest and pytest-xdist internals; each reach says why and
which versions it was checked against (pytest 8.0-9.2, pytest-xdist 3.6-3.8: pinned >=3.6,<4).

xdist -- the cancel signal must reach a worker while it is busy running a check. xdist has no public
hook for custom controller->worker commands, but ``WorkerController.sendcommand`` (public on
the controller) delivers any ``(name, kwargs)`` to the worker's ``WorkerInteractor.
handle_command``, which runs in execnet's receiver thread -- not blocked by the running test --
and ignores names it does not know. Wrapping that method is the smallest possible intrusion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CANCEL_COMMAND = "parex_cancel"

CommandHandler = Callable[[str, dict[str, Any]], None]


def install_command_handler(config: pytest.Config, handler: CommandHandler) -> bool:
    """Route worker commands named ``parex_*`` to ``handler``; return whether it worked.

    Must run before the worker's ``pytest_runtestloop`` registers the channel callback (it
    binds the method then).
    """
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor" and hasattr(plugin, "handle_command"):
            original = plugin.handle_command

            def handle_command(command: Any, _original: Any = original) -> None:
                if isinstance(command, tuple) and len(command) == 2:
                    name, kwargs = command
                    if isinstance(name, str) and name.startswith("parex_"):
                        handler(name, kwargs)
                        return
                _original(command)

            plugin.handle_command = handle_command
            return True
    return False
