"""``mstt run`` end to end on a tiny synthetic set, ``mstt eval``, and their one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import torch

import mstt.train
from mstt.cli import main
from mstt.plugins import reset_registry
from mstt.train import TrainResult, load_checkpoint

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

TINY = [
    "data.sample_rate=8000",
    "data.crop_seconds=1.0",
    "data.eval_segment_seconds=2.0",
    "data.options={tracks: 3, seconds: 4.0, jobs: 1}",
    "features.n_fft=256",
    "features.hop_length=64",
    "model.encoder.options.hidden_size=16",
    "model.encoder.options.num_layers=1",
    "model.encoder.options.dropout=0.0",
    "model.heads.dc.options.embedding_dim=4",
    "trainer.batch_size=2",
    "trainer.max_steps=4",
    "trainer.validate_every=2",
    "trainer.log_every=2",
    "trainer.num_workers=0",
    "trainer.device=cpu",
    "eval.report_examples=1",
]


def run_tiny(out: Path, recipe: str = "cerberus_set1.yaml") -> int:
    return main(["run", str(RECIPES / recipe), *TINY, "--out", str(out)])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, str]:
    """One tiny Cerberus run shared by the module (training is the slow part): (run folder, stdout)."""
    base = tmp_path_factory.mktemp("experiment")
    out = base / "run"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MSTT_CACHE", str(base / "cache"))
        reset_registry()
        with contextlib.redirect_stdout(printed):
            assert run_tiny(out) == 0
        reset_registry()
    return out, printed.getvalue()


def test_run_trains_evaluates_and_reports(tiny_run):
    out, printed = tiny_run
    for name in ("recipe.yaml", "checkpoints/last.pt", "checkpoints/best.pt", "metrics.json", "report.md",
                 "report.html", "logs/train.csv", "logs/validation.csv", "report/learning_curves.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"recipe", "checkpoint", "split", "n_examples", "skipped", "separation", "transcription"}
    assert metrics["checkpoint"].endswith("best.pt") and metrics["split"] == "test"
    assert list(metrics["separation"]) == ["piano", "guitar", "mean"]
    assert list(metrics["transcription"]) == ["piano", "guitar", "mean"]
    lines = printed.splitlines()
    assert any(line.startswith("piano ") and "SI-SDRi" in line and "onset F1" in line for line in lines)
    assert any(line.startswith("guitar ") for line in lines)
    report = (out / "report.md").read_text()
    assert "](report/example1_masks.png)" in report and "](report/learning_curves.png)" in report


def test_finished_run_run_again_only_reevaluates(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    before = json.loads((out / "metrics.json").read_text())
    (out / "metrics.json").unlink()
    assert run_tiny(out) == 0
    assert load_checkpoint(out / "checkpoints/last.pt")["step"] == 4  # no step trained
    after = json.loads((out / "metrics.json").read_text())
    assert {k: v for k, v in after.items() if k != "checkpoint"} == {k: v for k, v in before.items() if k != "checkpoint"}


def test_eval_writes_beside_the_run(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    assert main(["eval", str(out / "checkpoints/best.pt"), "--split", "validation", "--max-examples", "1"]) == 0
    metrics = json.loads((out / "eval-synth-validation" / "metrics.json").read_text())
    assert (metrics["split"], metrics["n_examples"], metrics["recipe"]) == ("validation", 1, "cerberus_set1")
    assert (out / "eval-synth-validation" / "report.md").is_file()


def test_interrupted_training_is_not_evaluated(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"

    def interrupted(config, model, train_set, val_set, out, progress=True, on_step=None):
        return TrainResult(out / "checkpoints/best.pt", out / "checkpoints/last.pt", 1, "interrupted", [])

    monkeypatch.setattr(mstt.train, "train", interrupted)
    assert run_tiny(out) == 130
    assert not (out / "metrics.json").exists()
    assert "run the same command again to resume" in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"not a checkpoint", None, {"weights": torch.zeros(2)}])
def test_eval_of_a_bad_checkpoint_is_a_one_line_error(tmp_path, capsys, content):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    assert main(["eval", str(path), "--data", "synth:"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mstt: error: ") and str(path) in err


def test_eval_bad_data_spec_is_a_one_line_error(tiny_run, capsys):
    assert main(["eval", str(tiny_run[0] / "checkpoints/best.pt"), "--data", ":/somewhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "KIND:PATH" in err


def _slakh_without_guitar(root: Path) -> Path:
    """A 44.1 kHz FLAC Slakh test track holding piano but no guitar stem."""
    import numpy as np

    from tests.data.fixtures import StemSpec, random_notes, write_track

    rng = np.random.default_rng(3)
    write_track(root / "test" / "Track01900", [StemSpec(0, random_notes(rng, 3.0, 60, 72)), StemSpec(33, random_notes(rng, 3.0, 36, 48))])
    return root


def test_eval_data_options_reach_the_adapter(tiny_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    root = _slakh_without_guitar(tmp_path / "slakh")
    best = str(out / "checkpoints/best.pt")
    # By default a track lacking one of the recipe's sources is skipped: nothing left to evaluate.
    assert main(["eval", best, "--data", f"slakh:{root}"]) == 2
    assert "lacks source 'guitar'" in capsys.readouterr().err
    assert main(["eval", best, "--data", f"slakh:{root}", "--data-option", "require_all_sources=false",
                 "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    # Piano plays alone in these tracks: the mixture is its reference, so it has SI-SDR and no SI-SDRi.
    piano = metrics["separation"]["piano"]
    assert metrics["n_examples"] == 2 and piano["si_sdr"] is not None and piano["si_sdri"] is None


@pytest.mark.parametrize("option, named", [("require_all_sourcez=false", "require_all_sourcez"), ("novalue", "KEY=VALUE")])
def test_eval_bad_data_option_is_a_one_line_error(tiny_run, tmp_path, capsys, option, named):
    root = _slakh_without_guitar(tmp_path / "slakh")
    assert main(["eval", str(tiny_run[0] / "checkpoints/best.pt"), "--data", f"slakh:{root}", "--data-option", option]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err


def test_gain_and_eq_augmentation_wrap_the_training_crops(tiny_run, monkeypatch):
    from mstt.data.augment import RemixAugmented
    from mstt.experiment import build_adapter, training_sets
    from mstt.recipe import load_recipe

    monkeypatch.setenv("MSTT_CACHE", str(tiny_run[0].parent / "cache"))  # the set tiny_run rendered
    config = load_recipe([RECIPES / "cerberus_set1.yaml"], [*TINY, "data.gain_augment_db=6", "data.eq_augment_db=9"])
    train_set, _ = training_sets(config, build_adapter(config))
    assert isinstance(train_set, RemixAugmented) and (train_set.gain_db, train_set.eq_db) == (6.0, 9.0)
    assert train_set.sample_rate == config.data.sample_rate == 8000  # EQ bands placed at the crops' rate
    item = train_set[0]
    torch.testing.assert_close(item["mixture"], item["sources"].sum(0))
    plain, _ = training_sets(load_recipe([RECIPES / "cerberus_set1.yaml"], TINY), build_adapter(config))
    assert not isinstance(plain, RemixAugmented)


@pytest.fixture(scope="module")
def broken_slakh(tmp_path_factory) -> Path:
    """Four test tracks, two of them broken (garbage metadata.yaml, a missing stem)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.data.fixtures import write_slakh

    root = tmp_path_factory.mktemp("slakh")
    write_slakh(root, {"train": ["Track00001"], "test": [f"Track0187{i}" for i in range(6, 10)]},
                sample_rate=8000, seconds=1.0)
    (root / "test/Track01877/metadata.yaml").write_text("stems: [unclosed\n  : :")
    (root / "test/Track01879/stems/S01.flac").unlink()
    return root


def test_eval_says_which_tracks_it_skipped_and_lists_them(tiny_run, broken_slakh, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["eval", str(tiny_run[0] / "checkpoints/best.pt"), "--data", f"slakh:{broken_slakh}", "--split", "test"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped 2 of 4 tracks of split test (1 bad metadata.yaml, 1 missing stem audio)" in printed
    skipped = json.loads((out / "metrics.json").read_text())["skipped"]
    assert sorted(Path(s["path"]).name for s in skipped) == ["Track01877", "Track01879"]
    report = (out / "report.md").read_text()
    assert "## Skipped tracks (2, not evaluated)" in report and "Track01879" in report and "missing stem audio" in report
    # --strict: an error before the model runs, one line, no new files.
    assert main([*args, "--out", str(tmp_path / "strict"), "--strict"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "skipped 2 of 4 tracks of split test" in line and "Track01877" in line and "drop --strict" in line
    assert not (tmp_path / "strict" / "metrics.json").exists()


def test_a_complete_split_lists_no_skipped_tracks(tiny_run):
    assert json.loads((tiny_run[0] / "metrics.json").read_text())["skipped"] == []
    assert "skipped" not in tiny_run[1] and "Skipped tracks" not in (tiny_run[0] / "report.md").read_text()
