"""The shared evaluation of every model kind, and the metrics.json file it writes.

See docs/design.md for the metrics.json schema and the metric definitions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mstt.evaluate.core import (
    REPORT_SECONDS,
    EvaluationResult,
    ReportExample,
    default_device,
    run_evaluation,
)
from mstt.evaluate.inference import Estimates, infer, model_outputs, stems_from_outputs
from mstt.fileio import write_text_atomic

__all__ = [
    "REPORT_SECONDS",
    "Estimates",
    "EvaluationResult",
    "ReportExample",
    "default_device",
    "infer",
    "model_outputs",
    "run_evaluation",
    "stems_from_outputs",
    "write_metrics",
]


def _finite(value: Any) -> Any:
    """The value with every non-finite float replaced by None (JSON has no NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``metrics`` as indented strict JSON, atomically (a temp file renamed over ``path``)."""
    return write_text_atomic(path, json.dumps(_finite(metrics), indent=2, allow_nan=False) + "\n")
