"""Shared by the data tests: the frame rounding rule and a per-test decoded-audio cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest


def frame_of(x: float) -> int:
    """round(x) with halves up: mstt's frame rounding (mstt.features.rolls)."""
    return int(math.floor(x + 0.5))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """The per-test cache that tests/conftest.py points MSTT_CACHE at."""
    return tmp_path / "mstt-cache"
