"""benchmarks/ablation.py: a tiny grid (2 recipes x 2 seeds) through main() with a fake training run."""

from __future__ import annotations

import importlib.util
import json
import shutil
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

SDR = {"chimera": 5.0, "cerberus": 4.9, "cerberus_onsets": 4.8}  # Cerberus within 0.2 dB of Chimera
ONSET = {"tr": 0.5, "cerberus": 0.45, "cerberus_onsets": 0.50}  # Cerberus below transcription-only; the onset head +0.05
MI_LOSS = {"chimera": (0.50, 0.05), "cerberus": (0.56, 0.07), "cerberus_onsets": (0.56, 0.07)}  # loss/mi = a - b * step


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


def write_validation_csv(out: Path, model: str, seed: int) -> None:
    """logs/validation.csv at steps 1-3 as the trainer writes it; loss/mi falls by MI_LOSS's slope, +0.01 per seed."""
    (out / "logs").mkdir(parents=True, exist_ok=True)
    lines = ["step,time,lr,loss,loss/dc,loss/mi,loss/tr"]
    if model in MI_LOSS:
        a, b = MI_LOSS[model]
        lines += [f"{k},{10.0 * k},0.001,0.3,0.2,{a - b * k + 0.01 * seed:.4f},0.1" for k in (1, 2, 3)]
    (out / "logs" / "validation.csv").write_text("\n".join(lines) + "\n")


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
        write_validation_csv(out, model, seed)
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


def test_a_run_that_stops_keeps_the_finished_runs_after_it(tmp_path, fake_training, monkeypatch):
    argv = ["--out", str(tmp_path), "--grid", "set1", "--models", "chimera", "cerberus", "--seeds", "0", "1", "--no-progress"]
    assert ablation.main(argv) == 0  # runs in order chimera 0, cerberus 0, chimera 1, cerberus 1
    shutil.rmtree(tmp_path / "chimera_set1" / "seed0")  # to train again, and this time it stops
    shutil.rmtree(tmp_path / "cerberus_set1" / "seed1")  # after the stop: must not train
    (tmp_path / "chimera_set1" / "seed1" / "ablation_run.json").unlink()  # finished, its record written again
    fake_training.clear()
    real = mstt.experiment.run_experiment
    monkeypatch.setattr(mstt.experiment, "run_experiment",
                        lambda config, out, progress=True: 130 if str(config.name) == "chimera_set1" else real(config, out, progress))
    assert ablation.main(argv) == 130
    assert fake_training == []  # cerberus seed 1 was not trained after the stop
    assert not (tmp_path / "cerberus_set1" / "seed1").exists()
    md = (tmp_path / "ablation.md").read_text()
    assert "Finished runs: 2 of 4" in md
    assert (tmp_path / "chimera_set1" / "seed1" / "ablation_run.json").is_file()  # the run after the stop counts
    table = [line for line in md.splitlines() if line.startswith(("| Chimera |", "| Cerberus |"))]
    assert len(table) >= 2 and all(line.rstrip().endswith("| 1 |") for line in table[:2])  # one seed each


# ------------------------------------------------------------------ issue 16: set 4 with the onset head, extra sets, curves


def test_claim_grid_is_set1_and_set4_with_the_onset_head(tmp_path):
    runs = ablation.load_runs(tmp_path, "claim", [0, 1], None, [], [])
    by_set = {s: [r.model for r in runs if r.set == s and r.seed == 0] for s in (1, 4)}
    assert by_set == {1: ["dc", "mi", "tr", "chimera", "dc_tr", "mi_tr", "cerberus"],
                      4: ["chimera", "tr", "cerberus", "cerberus_onsets"]}
    onsets = next(r for r in runs if r.model == "cerberus_onsets")
    assert onsets.item.name == "cerberus_onsets_set4" and "onset" in onsets.item.config.model.heads
    assert onsets.folder == tmp_path / "cerberus_onsets_set4" / "seed0"
    assert [r.model for r in ablation.load_runs(tmp_path, "all", [0], None, [], []) if r.set == 1] == ablation.SET1


def test_onset_head_section_and_validation_curves(tmp_path, fake_training):
    argv = ["--out", str(tmp_path), "--grid", "set4", "--models", "chimera", "cerberus", "cerberus_onsets",
            "--seeds", "0", "1", "--no-progress"]
    assert ablation.main(argv) == 0
    md = (tmp_path / "ablation.md").read_text()
    lines = md.splitlines()
    assert any(line.startswith("| 4 (piano + guitar + bass + drums + strings) | Cerberus + onset head | 4.90 ± 0.14 / 0.510 ± 0.014")
               for line in lines)
    # The onset head's effect: +0.05 onset F1 on every source, on/off F1 unchanged (0.3 in both).
    assert "### in-domain (2 / 2 seeds)" in md
    assert "| piano | 0.460 ± 0.014 | 0.510 ± 0.014 | +0.050 | 0.300 ± 0.000 | 0.300 ± 0.000 | +0.000 |" in lines
    assert "| drums | 0.460 ± 0.014 | 0.510 ± 0.014 | +0.050 |  |  |  |" in lines  # drums: no on/off F1
    assert "- in-domain: the onset head raises mean onset F1: 0.510 ± 0.014 with it vs 0.460 ± 0.014 without (difference +0.050)." in lines
    assert "- in-domain: the onset head leaves mean on/off F1: 0.300 ± 0.000 with it vs 0.300 ± 0.000 without (difference +0.000)." in lines
    # Validation loss/mi: Chimera 0.50 - 0.05k, Cerberus 0.56 - 0.07k (+0.01 per seed): the gap 0.04, 0.02, 0.00.
    assert "| 1 | 0.4550 ± 0.0071 | 0.4950 ± 0.0071 | +0.0400 |" in lines
    assert "| 3 | 0.3550 ± 0.0071 | 0.3550 ± 0.0071 | +0.0000 |" in lines
    curve = next(line for line in lines if line.startswith("Set 4: the gap in validation loss/mi"))
    assert "shrinks from +0.0400 at step 1 to +0.0000 at step 3; it is smallest (+0.0000) at step 3" in curve
    assert "smaller than the spread over seeds (0.00707)" in curve
    data = json.loads((tmp_path / "ablation.json").read_text())
    assert data["runs"][0]["validation"][0] == {"step": 1, "loss": 0.3, "loss/dc": 0.2, "loss/mi": 0.45, "loss/tr": 0.1}
    effect = data["onset_head"][0]
    mean = next(r for r in effect["rows"] if r["source"] == "mean")
    assert effect["where"] == "in-domain" and mean["onset"]["difference"] == pytest.approx(0.05)
    assert mean["onset"]["within_spread"] is False and mean["onset_offset"]["within_spread"] is False
    assert [r["step"] for r in data["validation_curves"]["sets"]["4"]] == [1, 2, 3]


def test_onset_difference_within_the_seed_spread_says_so():
    def record(model: str, seed: int, f1: float) -> dict[str, Any]:
        return {"model": model, "set": 4, "seed": seed, "sources": ["piano"],
                "transcription": {"piano": {"onset": {"f1": f1}}, "mean": {"onset": {"f1": f1}}}}

    records = [record("cerberus", 0, 0.40), record("cerberus", 1, 0.50), record("cerberus_onsets", 0, 0.42), record("cerberus_onsets", 1, 0.50)]
    effect = ablation.onset_head_effect(records)
    assert effect["text"] == ["in-domain: the onset head raises mean onset F1: 0.460 ± 0.057 with it vs 0.450 ± 0.071 without "
                              "(difference +0.010) — smaller than the spread over seeds (0.0707), so not a clear difference."]
    assert ablation.onset_head_effect(records[:2]) is None  # no run with the onset head: no section
    assert ablation.onset_head_effect(records, "pop") is None  # no run was evaluated on pop


def test_validation_rows_read_every_loss_column(tmp_path):
    path = tmp_path / "validation.csv"
    path.write_text("step,time,lr,loss,loss/dc,loss/mi,loss/tr,loss/onset\n250,10,0.1,0.5,0.2,0.3,0.1,0.05\n"
                    "500,20,0.1,0.4,0.2,,0.1,0.04\n250,30,0.1,0.45,0.2,0.25,0.1,0.05\n,40,0.1\n")
    assert ablation.validation_rows(path) == [  # a step validated again after a resume: the later row wins
        {"step": 250, "loss": 0.45, "loss/dc": 0.2, "loss/mi": 0.25, "loss/tr": 0.1, "loss/onset": 0.05},
        {"step": 500, "loss": 0.4, "loss/dc": 0.2, "loss/mi": None, "loss/tr": 0.1, "loss/onset": 0.04},
    ]
    assert ablation.validation_rows(tmp_path / "none.csv") == []


@pytest.fixture
def pop_set(tmp_path) -> Path:
    """A Slakh-layout folder with one 8 kHz test track holding piano and bass but no guitar (set 1 has piano + guitar)."""
    import numpy as np

    from tests.data.fixtures import StemSpec, random_notes, write_track

    rng = np.random.default_rng(5)
    root = tmp_path / "pop_slakh"
    write_track(root / "test" / "Track01900", [StemSpec(0, random_notes(rng, 3.0, 60, 72)), StemSpec(33, random_notes(rng, 3.0, 36, 48))],
                sample_rate=8000, seconds=3.0)
    return root


@pytest.fixture
def fake_eval(monkeypatch) -> list[dict[str, Any]]:
    """Replace mstt eval's evaluate() by one that returns the in-domain metrics 3 dB and 0.1 F1 lower; records its calls."""
    import mstt.commands.eval

    calls: list[dict[str, Any]] = []

    def fake(checkpoint, **kwargs):
        calls.append({"checkpoint": Path(checkpoint), **kwargs})
        folder = Path(checkpoint).parents[1]
        metrics = json.loads((folder / "metrics.json").read_text())
        for block in (metrics.get("separation") or {}).values():
            block["si_sdri"] -= 3.0
        for block in (metrics.get("transcription") or {}).values():
            block["onset"]["f1"] -= 0.1
        return {**metrics, "n_examples": 2, "skipped": []}, kwargs["out"]

    monkeypatch.setattr(mstt.commands.eval, "evaluate", fake)
    return calls


def test_extra_set_evaluates_every_run_and_resumes(tmp_path, fake_training, fake_eval, pop_set):
    out = tmp_path / "grid"
    argv = ["--out", str(out), "--grid", "set1", "--models", "chimera", "cerberus", "--seeds", "0", "1", "--no-progress"]
    assert ablation.main(argv) == 0 and fake_eval == []  # finished before the extra set was asked for
    fake_training.clear()
    extra = [*argv, "--extra-data", f"pop={pop_set}".replace("=", "=slakh:", 1), "--extra-max-examples", "5"]
    assert ablation.main(extra) == 0
    assert fake_training == [] and len(fake_eval) == 4  # re-read runs that lack the set are evaluated, not retrained
    call = fake_eval[0]
    assert call["data"] == f"slakh:{pop_set}" and call["data_options"] == ["require_all_sources=false"]
    assert call["max_examples"] == 5 and call["split"] == "test" and call["checkpoint"].name == "last.pt"  # no best.pt here
    assert call["out"] == out / "chimera_set1" / "seed0" / "eval-extra-pop"
    record = json.loads((out / "chimera_set1" / "seed0" / "ablation_run.json").read_text())
    assert record["extra"]["pop"]["separation"]["mean"]["si_sdri"] == pytest.approx(2.0)
    assert record["extra"]["pop"]["root"] == str(pop_set) and record["extra"]["pop"]["n_examples"] == 2
    md = (out / "ablation.md").read_text()
    assert f"## Extra set `pop` (slakh:{pop_set}, split test, at most 5 windows), per instrument" in md
    assert "| 1 (piano + guitar) | Cerberus | 2.00 ± 0.14 / 0.360 ± 0.014 / 0.300 ± 0.000 |" in md
    assert list(json.loads((out / "ablation.json").read_text())["extra"]) == ["pop"]

    fake_eval.clear()
    assert ablation.main(extra) == 0 and fake_eval == []  # every record holds it: nothing to do
    assert ablation.main([*extra[:-1], "8"]) == 0 and len(fake_eval) == 4  # another window count: evaluated again

    fake_eval.clear()  # a record made under older scoring rules is evaluated again
    record_path = out / "chimera_set1" / "seed0" / "ablation_run.json"
    record = json.loads(record_path.read_text())
    record["extra"]["pop"]["scoring"] = ablation.EXTRA_SCORING - 1
    record_path.write_text(json.dumps(record))
    assert ablation.main([*extra[:-1], "8"]) == 0 and len(fake_eval) == 1


def test_onset_head_on_the_extra_set(tmp_path, fake_training, fake_eval, pop_set):
    argv = ["--out", str(tmp_path), "--grid", "set4", "--models", "cerberus", "cerberus_onsets", "--seeds", "0", "1",
            "--no-progress", "--extra-data", f"pop=slakh:{pop_set}"]
    # pop_set holds piano and bass: enough for set 4 (require_all_sources=false).
    assert ablation.main(argv) == 0
    md = (tmp_path / "ablation.md").read_text()
    assert "### pop (2 / 2 seeds)" in md
    assert "- pop: the onset head raises mean onset F1: 0.410 ± 0.014 with it vs 0.360 ± 0.014 without (difference +0.050)." in md


@pytest.mark.parametrize("flag, named", [
    ("pop=slakh:{missing}", "no folder"),
    ("pop", "write NAME=KIND:PATH"),
    ("pop=slakh", "write NAME=KIND:PATH"),
    ("p/q=slakh:{pop}", "use letters, digits"),
    ("pop=slak:{pop}", "unknown dataset 'slak'"),
    ("pop=slakh:{empty}", "--extra-data pop=slakh:"),
])
def test_bad_extra_data_is_refused_before_training(tmp_path, fake_training, pop_set, capsys, flag, named):
    (tmp_path / "empty").mkdir()
    flag = flag.format(missing=tmp_path / "nowhere", pop=pop_set, empty=tmp_path / "empty")
    argv = ["--out", str(tmp_path / "grid"), "--grid", "set1", "--models", "cerberus", "--seeds", "0", "--no-progress",
            "--extra-data", flag]
    assert ablation.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fake_training == [] and len(err.splitlines()) == 1 and named in err and err.startswith(f"error: --extra-data {flag}")


def test_repeated_extra_name_and_bad_count_are_refused(tmp_path, fake_training, pop_set, capsys):
    base = ["--out", str(tmp_path / "grid"), "--grid", "set1", "--models", "cerberus", "--seeds", "0", "--no-progress"]
    twice = [*base, "--extra-data", f"pop=slakh:{pop_set}", "--extra-data", f"pop=slakh:{pop_set}"]
    assert ablation.main(twice) == 2 and "given twice" in capsys.readouterr().err
    assert ablation.main([*base, "--extra-max-examples", "0"]) == 2
    assert "--extra-max-examples 0: need at least 1" in capsys.readouterr().err
    assert fake_training == []


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny Cerberus (piano, guitar; 8 kHz) trained 2 steps: its best.pt."""
    from mstt.train import train
    from tests.train.test_loop import ToneDataset, make_model, tiny_config

    base = tmp_path_factory.mktemp("tiny")
    config = tiny_config("trainer.max_steps=2", "trainer.validate_every=2", "data.eval_segment_seconds=2.0")
    train(config, make_model(config), ToneDataset(4, seed=1), ToneDataset(2, seed=2), base / "run", progress=False)
    return base / "run" / "checkpoints" / "best.pt"


def test_extra_set_through_mstt_evals_own_code(tmp_path, tiny_checkpoint, pop_set):
    from tests.train.test_loop import tiny_config

    folder = tmp_path / "cerberus_set1" / "seed0"
    (folder / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, folder / "checkpoints" / "best.pt")
    config = tiny_config("data.eval_segment_seconds=2.0")
    run = ablation.Run(1, "cerberus", 0, ablation.BenchItem("cerberus_set1.yaml", config), folder)
    extra = ablation.parse_extra(f"pop=slakh:{pop_set}", 4)
    ablation.check_extras([extra], [run])  # sets require_all_sources=false: the track has no guitar
    result = ablation.evaluate_extra(run, extra, progress=False)
    assert result["checkpoint"] == "best.pt" and result["n_examples"] >= 1 and result["skipped"] == 0
    # The track has piano alone (no guitar, no accompaniment): its mixture is the piano reference,
    # so piano is scored by SI-SDR but has no improvement over the mixture to report.
    piano = result["separation"]["piano"]
    assert piano["si_sdr"] is not None and piano["si_sdri"] is None and "guitar" in result["separation"]
    assert "onset" in result["transcription"]["piano"]
    saved = json.loads((folder / "eval-extra-pop" / "metrics.json").read_text())
    assert saved["separation"]["piano"]["si_sdr"] == pytest.approx(piano["si_sdr"])


@pytest.mark.parametrize("first, last, trend", [
    (0.04, 0.0, "shrinks"), (0.01, 0.03, "grows"), (0.02, 0.02, "stays level"), (-0.01, 0.01, "changes sign"),
])
def test_curve_line_names_the_trend(first, last, trend):
    numbers = sys.modules["ablation_numbers"]
    stat = {"mean": 0.1, "std": None, "n": 1}
    rows = [{"step": 1, "chimera": stat, "cerberus": stat, "difference": first},
            {"step": 3, "chimera": stat, "cerberus": stat, "difference": last}]
    assert f"Cerberus separates worse) {trend} from" in numbers.curve_line(1, rows)
