"""A plugin for the child pytest of one shard of a ``tests`` check
(``-p pytest_parex.child.shard --parex-shard 2/3 --parex-shard-durations FILE``).

Every shard collects the whole suite and keeps its share of the test *files* (of the tests
themselves when there are fewer files than shards), split by
:func:`pytest_parex.child.sharding.split` on the durations the gate remembered. Every shard reads
the same durations file, so the shares are disjoint and together cover every selected test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pytest_parex.child.sharding import split
from pytest_parex.results import durations


def _shard(text: str) -> tuple[int, int]:
    try:
        index, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N like 2/3, got {text!r}") from None
    if not 1 <= index <= total:
        raise argparse.ArgumentTypeError(f"expected 1 <= I <= N in I/N, got {text!r}")
    return index, total


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parex-shard", "test sharding (pytest-parex)")
    group.addoption(
        "--parex-shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="Run only the I-th of N shards of the selected test files",
    )
    group.addoption(
        "--parex-shard-durations",
        default=None,
        metavar="PATH",
        help="JSON object file -> seconds used to balance the shards",
    )


def _durations(path: str | None, section: str) -> dict[str, float]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return durations(data.get(section) if isinstance(data, dict) else None)


def unit_of(nodeid: str, by_file: bool) -> str:
    return nodeid.split("::", 1)[0] if by_file else nodeid


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("parex_shard")
    if shard is None:
        return
    index, total = shard
    by_file = len({unit_of(item.nodeid, True) for item in items}) >= total
    units = sorted({unit_of(item.nodeid, by_file) for item in items})
    path = config.getoption("parex_shard_durations")
    shares = split(units, total, _durations(path, "files" if by_file else "tests"))
    mine = set(shares[index - 1])
    kept = [item for item in items if unit_of(item.nodeid, by_file) in mine]
    dropped = [item for item in items if unit_of(item.nodeid, by_file) not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
