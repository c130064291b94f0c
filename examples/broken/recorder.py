"""Keeps a record of every event -- and never lets go of it (the leak demo)."""

import os
import sys  # unused on purpose: the lint demo (F401)

_EVENTS = []


def record(event: str) -> int:
    _EVENTS.append(event.encode() * 10_000)  # ~100 KiB per call, kept forever
    return len(_EVENTS)


def home() -> str:
    return os.path.expanduser("~")
