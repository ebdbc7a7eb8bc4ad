"""benchmarks/bench_seeds.py: two seeds' bench.json files -> mean ± std per recipe and source."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load():
    spec = importlib.util.spec_from_file_location("bench_seeds", BENCHMARKS / "bench_seeds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_seeds"] = module
    spec.loader.exec_module(module)
    return module


bench_seeds = _load()


def _row(recipe: str, steps: int, sdr: float, onset: float | None) -> dict:
    return {
        "recipe": recipe,
        "params": 1_000_000,
        "si_sdri": {"bass": sdr, "drums": sdr + 2, "mean": sdr + 1},
        "onset_f1": None if onset is None else {"bass": onset, "drums": onset, "mean": onset},
        "train_throughput": steps / 10,
        "rtf": 0.01,
        "peak_memory_mb": 1024.0,
        "steps": steps,
    }


def _write(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir()
    (folder / "bench.json").write_text(json.dumps({"rows": rows}))
    return folder


def test_two_seeds_give_mean_and_sample_std_per_source(tmp_path):
    a = _write(tmp_path / "s0", [_row("cerberus", 100, 4.0, 0.4), _row("convtasnet", 50, 5.0, None)])
    b = _write(tmp_path / "s1", [_row("convtasnet", 70, 6.0, None), _row("cerberus", 120, 5.0, 0.5)])
    bench_seeds.main([str(a), str(b / "bench.json"), "--out", str(tmp_path / "out")])
    stats = json.loads((tmp_path / "out" / "bench_seeds.json").read_text())["recipes"]
    assert list(stats) == ["cerberus", "convtasnet"]
    assert stats["cerberus"]["steps"]["mean"] == 110 and stats["cerberus"]["steps"]["std"] == pytest.approx(14.142, abs=1e-3)
    assert stats["cerberus"]["si_sdri"]["drums"]["mean"] == pytest.approx(6.5)
    assert stats["cerberus"]["onset_f1"]["mean"]["mean"] == pytest.approx(0.45)
    assert stats["convtasnet"]["onset_f1"] is None
    text = (tmp_path / "out" / "bench_seeds.md").read_text()
    assert "| cerberus | 1.00 M | 110 ± 14 | 11.0 ± 1.4 | 1.00 ± 0.00 |" in text
    assert "| convtasnet | 5.50 ± 0.71 | 7.50 ± 0.71 |" in text  # SI-SDRi per source: bass, drums


def test_runs_with_different_recipes_are_refused(tmp_path):
    a = _write(tmp_path / "s0", [_row("cerberus", 100, 4.0, 0.4)])
    b = _write(tmp_path / "s1", [_row("chimera", 100, 4.0, None)])
    with pytest.raises(SystemExit, match="run 2 has recipes"):
        bench_seeds.main([str(a), str(b), "--out", str(tmp_path / "out")])


def test_a_missing_bench_json_names_the_file(tmp_path):
    with pytest.raises(SystemExit, match="bench.json: not a bench.json"):
        bench_seeds.main([str(tmp_path), "--out", str(tmp_path / "out")])
