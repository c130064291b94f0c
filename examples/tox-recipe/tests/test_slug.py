from __future__ import annotations

from recipe import slug


def test_slug() -> None:
    assert slug("Hello, World") == "hello-world"


def test_empty() -> None:
    assert slug(" -- ") == ""
