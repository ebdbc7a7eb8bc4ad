"""benchmarks/ablation.py: a tiny grid (2 recipes x 2 seeds) through main() with a fake training run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from omegaconf import OmegaConf

import mstt.experiment
from mstt.train.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"
SIR = {"value": False}  # whether the fake evaluation reports SIR/SAR


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ablation"] = module
    spec.loader.exec_module(module)
    return module


ablation = _load()

SDR = {"chimera": 5.0, "cerberus": 4.9}  # Cerberus within 0.2 dB of Chimera
ONSET = {"tr": 0.5, "cerberus": 0.45}  # Cerberus below transcription-only


def fake_metrics(model: str, seed: int, sources: list[str]) -> dict[str, Any]:
    """metrics.json of a model: separation when it has DC/MI, transcription when it has TR; +0.2 dB / +0.02 per seed."""
    out: dict[str, Any] = {"recipe": model}
    if model in SDR:
        sep = {s: {"si_sdr": 1.0, "si_sdri": SDR[model] + 0.2 * seed, "sdr": 6.0 + seed} for s in sources}
        if SIR["value"]:
            for v in sep.values():
                v.update(sir=12.0, sar=8.0)
        sep["mean"] = {k: sum(v[k] for v in sep.values()) / len(sources) for k in ("si_sdr", "si_sdri", "sdr")}
        out["separation"] = sep
    if model in ONSET:
        f1 = ONSET[model] + 0.02 * seed
        tr = {}
        for s in sources:
            tr[s] = {"frame": {"f1": 0.8}, "onset": {"f1": f1}}
            if s != "drums":
                tr[s]["onset_offset"] = {"f1": 0.3}
        tr["mean"] = {"frame": {"f1": 0.8}, "onset": {"f1": f1}, "onset_offset": {"f1": 0.3}}
        out["transcription"] = tr
    return out


@pytest.fixture
def fake_training(monkeypatch) -> list[tuple[str, int]]:
    """Replace run_experiment by one that writes recipe.yaml, metrics.json and last.pt; records its calls."""
    calls: list[tuple[str, int]] = []

    def fake(config, out, progress=True):
        name, seed = str(config.name), int(config.trainer.seed)
        calls.append((name, seed))
        out = Path(out)
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "recipe.yaml").write_text(yaml.safe_dump(OmegaConf.to_container(config, resolve=True)))
        model = name.rsplit("_set", 1)[0]
        (out / "metrics.json").write_text(json.dumps(fake_metrics(model, seed, list(config.data.sources))))
        torch.save({"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION, "step": 3, "elapsed": 30.0},
                   out / "checkpoints" / "last.pt")
        return 0

    monkeypatch.setattr(mstt.experiment, "run_experiment", fake)
    monkeypatch.setattr(ablation, "data_size", lambda run: {
        "kind": "synth", "sources": list(run.item.config.data.sources),
        "splits": {"train": {"tracks": 8, "hours": 0.05}, "test": {"tracks": 2, "hours": 0.01}}})
    return calls


def test_set1_table_shape_cells_and_resume(tmp_path, fake_training):
    out = tmp_path / "grid"
    argv = ["--out", str(out), "--grid", "set1", "--models", "chimera", "cerberus", "--seeds", "0", "1", "--no-progress"]
    assert ablation.main(argv) == 0
    assert sorted(fake_training) == [("cerberus_set1", 0), ("cerberus_set1", 1), ("chimera_set1", 0), ("chimera_set1", 1)]
    for name in ("chimera_set1", "cerberus_set1"):
        for seed in (0, 1):
            assert (out / name / f"seed{seed}" / "metrics.json").is_file()
    md = (out / "ablation.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert table[0] == "| model | SI-SDRi | SDR | frame F1 | onset F1 | on/off F1 | seeds |"  # no SIR/SAR reported
    assert table[1].startswith("| Chimera | 5.10 ± 0.14 | 6.50 ± 0.71 |")
    assert table[1] == "| Chimera | 5.10 ± 0.14 | 6.50 ± 0.71 |  |  |  | 2 |"  # no TR head: empty cells
    assert table[2] == "| Cerberus | 5.00 ± 0.14 | 6.50 ± 0.71 | 0.800 ± 0.000 | 0.460 ± 0.014 | 0.300 ± 0.000 | 2 |"
    assert "Total training time: 2.0 min" in md and "cpu:" in md and "train 8 tracks / 3.0 min" in md
    assert "Cerberus keeps Chimera's separation: mean SI-SDRi 5.00 ± 0.14 dB vs Chimera 5.10 ± 0.14 dB (difference -0.10 dB" in md
    data = json.loads((out / "ablation.json").read_text())
    assert [r["model"] for r in data["set1"]["rows"]] == ["chimera", "cerberus"] and len(data["runs"]) == 4
    assert data["set1"]["rows"][0]["metrics"]["onset F1"] is None
    assert data["claims"][0]["separation"]["holds"] is True and data["claims"][0]["holds"] is None

    fake_training.clear()  # a second run only re-reads
    assert ablation.main(argv) == 0
    assert fake_training == [] and (out / "ablation.md").read_text() == md


def test_sir_sar_columns_when_present(tmp_path, fake_training):
    SIR["value"] = True
    try:
        argv = ["--out", str(tmp_path), "--grid", "set1", "--models", "chimera", "--seeds", "0", "1", "--no-progress"]
        assert ablation.main(argv) == 0
    finally:
        SIR["value"] = False
    header = next(line for line in (tmp_path / "ablation.md").read_text().splitlines() if line.startswith("| model"))
    assert header == "| model | SI-SDRi | SDR | SIR | SAR | frame F1 | onset F1 | on/off F1 | seeds |"


def test_per_instrument_table_and_claim_that_fails(tmp_path, fake_training):
    argv = ["--out", str(tmp_path), "--grid", "sets", "--models", "tr", "cerberus", "--seeds", "0", "1", "--no-progress"]
    assert ablation.main(argv) == 0
    lines = (tmp_path / "ablation.md").read_text().splitlines()
    assert "| set | model | piano | guitar | bass | drums | strings | seeds |" in lines
    tr2 = next(line for line in lines if line.startswith("| 2 (piano + guitar + bass) | Transcription only"))
    assert tr2.startswith("| 2 (piano + guitar + bass) | Transcription only | – / 0.510 ± 0.014 / 0.300 ± 0.000 |")
    assert tr2.endswith("|  |  | 2 |")  # set 2 has no drums or strings
    cerb3 = next(line for line in lines if line.startswith("| 3 (piano + guitar + bass + drums) | Cerberus"))
    assert "| 5.00 ± 0.14 / 0.460 ± 0.014 / – |  | 2 |" in cerb3  # drums: no on/off
    text = "\n".join(lines)
    assert "Set 2: Cerberus does NOT beat transcription-only on mean onset F1: 0.460 ± 0.014 vs 0.510 ± 0.014 (difference -0.050)." in text
    assert "does not hold on set(s) 2, 3, 4" in text


def _record(model: str, seed: int, si_sdri: float | None, onset: float | None) -> dict[str, Any]:
    record: dict[str, Any] = {"model": model, "set": 1, "seed": seed}
    if si_sdri is not None:
        record["separation"] = {"mean": {"si_sdri": si_sdri}}
    if onset is not None:
        record["transcription"] = {"mean": {"onset": {"f1": onset}}}
    return record


def test_claim_holds_and_fails_with_numbers():
    holds = ablation.claims([_record("chimera", 0, 6.0, None), _record("chimera", 1, 6.2, None),
                             _record("tr", 0, None, 0.50), _record("tr", 1, None, 0.52),
                             _record("cerberus", 0, 5.95, 0.55), _record("cerberus", 1, 6.05, 0.57)])[0]
    assert holds["holds"] is True
    assert holds["text"][0].startswith("Set 1: Cerberus keeps Chimera's separation: mean SI-SDRi 6.00 ± 0.07 dB vs Chimera 6.10 ± 0.14 dB (difference -0.10 dB")
    assert holds["text"][1] == "Set 1: Cerberus beats transcription-only on mean onset F1: 0.560 ± 0.014 vs 0.510 ± 0.014 (difference +0.050)."
    fails = ablation.claims([_record("chimera", 0, 6.0, None), _record("tr", 0, None, 0.5), _record("cerberus", 0, 5.5, 0.5)])[0]
    assert fails["holds"] is False and fails["separation"]["holds"] is False and fails["transcription"]["holds"] is False
    assert fails["text"][0].startswith("Set 1: Cerberus does NOT keep Chimera's separation: mean SI-SDRi 5.50 dB vs Chimera 6.00 dB (difference -0.50 dB")
    assert "does NOT beat transcription-only on mean onset F1: 0.500 vs 0.500 (difference +0.000)" in fails["text"][1]


def test_cell_format():
    assert ablation.cell(None, 2) == ""
    assert ablation.cell(ablation.spread([1.0, 2.0, None]), 2) == "1.50 ± 0.71"
    assert ablation.cell(ablation.spread([0.25]), 3) == "0.250"


def test_interrupted_grid_keeps_finished_runs_and_mismatch_is_refused(tmp_path, fake_training, monkeypatch, capsys):
    real = mstt.experiment.run_experiment
    monkeypatch.setattr(mstt.experiment, "run_experiment",
                        lambda config, out, progress=True: 130 if str(config.name) == "cerberus_set1" else real(config, out, progress))
    argv = ["--out", str(tmp_path), "--grid", "set1", "--models", "chimera", "cerberus", "--seeds", "0", "--no-progress"]
    assert ablation.main(argv) == 130
    md = (tmp_path / "ablation.md").read_text()
    assert "| Chimera | 5.00 |" in md and "Finished runs: 1 of 2" in md
    assert ablation.main([*argv, "optim.lr=0.5"]) == 2  # chimera_set1/seed0 holds another recipe
    assert "holds a run of a different recipe (optim.lr" in capsys.readouterr().err
