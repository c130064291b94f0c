"""A tiny library for the tox recipe."""

from __future__ import annotations


def slug(text: str) -> str:
    """Lower-case words joined by dashes: ``slug("Hello, World") == "hello-world"``."""
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return "-".join(w.lower() for w in words)
