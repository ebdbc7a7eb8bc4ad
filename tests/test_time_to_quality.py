"""benchmarks/time_to_quality.py: which overrides each path trains with (recipes resolved, nothing trained)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_quality.py"


@pytest.fixture(scope="module")
def ttq():
    spec = importlib.util.spec_from_file_location("time_to_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["time_to_quality"] = module
    spec.loader.exec_module(module)
    return module


def test_each_lever_path_changes_one_setting_of_the_shipped_recipe(ttq):
    bound = ttq.group_overrides(None, 10, 0)
    paths = ["reference", "fast", "bf16-trunk", "bf16-dc-all", "fp32-dc-subset", "fast-lstm-fp32"]
    items = ttq.group_items([], bound, paths)
    got = {
        item.path: (
            str(item.config.trainer.precision),
            float(item.config.model.heads.dc.train_frames),
            bool(item.config.model.encoder.options.fp32),
        )
        for item in items
    }
    shipped = got["fast"]
    assert shipped[1] < 1.0 and shipped[2]  # the demo trains DC on a subset of frames, its trunk in fp32
    assert got["reference"] == ("fp32", 1.0, True)
    assert got["bf16-trunk"] == (shipped[0], shipped[1], False)
    assert got["bf16-dc-all"] == (shipped[0], 1.0, False)
    assert got["fp32-dc-subset"] == ("fp32", shipped[1], True)
    assert got["fast-lstm-fp32"] == shipped
    assert [item.config.name for item in items] == [f"cerberus_set4-{p}" for p in paths]


def test_an_unknown_path_is_refused_by_the_command_line(ttq, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        ttq.main(["--out", str(tmp_path), "--steps", "5", "--paths", "fast", "bf16"])
    assert exc.value.code == 2
    assert "invalid choice: 'bf16'" in capsys.readouterr().err


@pytest.mark.parametrize("flags, named", [
    (["--steps", "5", "--seeds", "0", "0"], "--seeds: 0 is given twice"),
    (["--steps", "5", "--paths", "fast", "fast"], "--paths: fast is given twice"),
    (["--budgets", "2", "2"], "--budgets: 2.0 is given twice"),
])
def test_a_seed_path_or_budget_given_twice_is_refused_before_training(ttq, tmp_path, flags, named):
    with pytest.raises(ttq.MsttError, match=named):
        ttq.main(["--out", str(tmp_path), *flags])
    assert not any(tmp_path.iterdir())
