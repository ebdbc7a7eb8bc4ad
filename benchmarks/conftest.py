"""pytest settings for the benchmark suites: collect ``bench_*.py``, name the machine in saved results.

``pytest benchmarks`` collects the ``bench_*.py`` files (the project's ``python_files`` is pytest's
default, ``test_*.py``). Every saved result (``--benchmark-save`` / ``--benchmark-json``) gets the
CPU model from /proc/cpuinfo, the core count, torch's thread count and the load average in its
``machine_info``, so that two saved runs say which machine, and how busy it was.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Timings a suite wants summarised at the end of the session (e.g. the SDR speed ratio): label -> text.
SUMMARY: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Collect ``bench_*.py`` as test modules."""
    config.addinivalue_line("python_files", "bench_*.py")


def machine() -> dict[str, Any]:
    """CPU model, cores, torch threads and load average: what a benchmark number depends on."""
    import torch

    from mstt.bench import cpu_name

    info: dict[str, Any] = {
        "cpu_model": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add :func:`machine` to pytest-benchmark's machine_info."""
    machine_info.update(machine())


@pytest.fixture(scope="session")
def summary() -> dict[str, str]:
    """Where a benchmark records a line for the end-of-session summary (label -> text)."""
    return SUMMARY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the summaries the suites recorded in :data:`SUMMARY`."""
    if SUMMARY:
        terminalreporter.section("benchmark summary")
        for label, text in SUMMARY.items():
            terminalreporter.write_line(f"{label}: {text}")
