"""``--parex-json PATH``: the gate as one JSON document (pure, but for the atomic write).

The document's shape is ``report.schema.json`` beside this module (JSON Schema 2020-12); its
``schema_version`` changes only when a consumer would have to change. Times are seconds;
``start``/``end`` are offsets from the gate's start, so documents from two machines compare.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_parex.output import timeline
from pytest_parex.output.text import rel
from pytest_parex.results import STATUSES, CheckResult, GateResult, Status

SCHEMA_VERSION = 1
SCHEMA_FILE = "report.schema.json"


def schema() -> dict[str, Any]:
    """The JSON Schema the documents follow (shipped in the package)."""
    text = resources.files("pytest_parex.output").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def jsonable(value: Any) -> Any:
    """``value`` with builtins only and no NaN/infinity (which strict JSON has no words for)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def _offset(moment: float | None, origin: float) -> float | None:
    return None if moment is None else round(max(moment - origin, 0.0), 4)


def _check(result: CheckResult, origin: float, root: Path) -> dict[str, Any]:
    return {
        "name": result.name,
        "agent": result.agent,
        "worker": result.worker or None,
        "kind": result.kind,
        "status": result.status,
        "blocking": result.blocking,
        "attempts": result.attempts,
        "start": _offset(result.start, origin),
        "end": _offset(result.end, origin),
        "duration": round(result.duration, 4),
        "cpu": round(result.cpu, 4),
        "returncode": result.returncode,
        "detail": result.detail,
        "reason": result.reason,
        "cached": result.cached,
        "figures": jsonable(result.figures),
        "log": rel(result.log_path, root) or None,
    }


def document(
    gate: GateResult,
    *,
    origin: float,
    root: Path,
    config_path: Path,
    needs: Mapping[str, Sequence[str]] | None = None,
    version: str = "",
) -> dict[str, Any]:
    """The report of ``gate``; ``origin`` is the gate's start (``time.time()``)."""
    tl = timeline.build(gate, origin, needs)
    counts = {s: sum(1 for r in gate.results if r.status == s) for s in STATUSES}
    workers: dict[str, list[dict[str, Any]]] = {}
    for bar in tl.bars:
        workers.setdefault(bar.worker, []).append(
            {
                "name": bar.name,
                "start": round(bar.start, 4),
                "end": round(bar.end, 4),
                "status": bar.status,
                "critical": bar.critical,
            }
        )
    started = datetime.datetime.fromtimestamp(origin, tz=datetime.timezone.utc)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "pytest-parex", "version": version},
        "config": rel(str(config_path), root),
        "rootdir": str(root),
        "started_at": started.isoformat(timespec="milliseconds"),
        "checks": [_check(r, origin, root) for r in gate.results],
        "totals": {
            "checks": len(gate.results),
            "counts": counts,
            "sequential": round(gate.sequential, 4),
            "wall": round(gate.wall, 4),
            "process_wall": round(gate.process_wall, 4),
            "speedup": round(gate.speedup, 4),
            "critical_path": round(gate.critical_path, 4),
            "bound": round(gate.bound, 4),
            "cpu": round(gate.cpu, 4),
            "cached": gate.cached,
            "saved": round(gate.saved, 4),
            "verdict": (Status.PASSED if gate.verdict else Status.FAILED).value,
            "headline": gate.headline,
            "gate": gate.gate,
            "on_failure": gate.on_failure,
            "interrupted": gate.interrupted,
            "workers": gate.workers,
            "parallel": gate.parallel,
            "serialised": list(gate.serialised),
        },
        "timeline": {
            "wall": round(tl.wall, 4),
            "critical_path": list(tl.critical_path),
            "workers": [{"worker": w, "checks": bars} for w, bars in workers.items()],
            "not_run": [{"name": n, "status": s} for n, s in tl.not_run],
        },
    }


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(jsonable(doc), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
