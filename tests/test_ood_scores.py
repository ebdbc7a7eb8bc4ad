"""benchmarks/ood_scores.py: tiny Slakh-layout test sets, tiny Cerberus and ConvTasNet checkpoints, scored in-process."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ood = _load("ood_scores")
score_stems = sys.modules["score_stems"]

ASTEROID_TINY = {"n_filters": 16, "bn_chan": 8, "hid_chan": 16, "skip_chan": 8, "n_blocks": 2, "n_repeats": 1}


@pytest.fixture(scope="module")
def test_set(tmp_path_factory) -> Path:
    """A Slakh-layout split of two 8 kHz, 2-second full-band tracks (piano, guitar, bass, drums, strings, an organ)."""
    from tests.data.fixtures import write_slakh

    root = tmp_path_factory.mktemp("ood") / "slakh"
    write_slakh(root, {"test": ["Track01876", "Track01877"]}, sample_rate=8000, seconds=2.0)
    return root / "test"


@pytest.fixture(scope="module")
def bench_folder(tmp_path_factory) -> Path:
    """A folder laid out as mstt bench writes it: a tiny Cerberus and a tiny ConvTasNet (piano, guitar) trained 2 steps."""
    from mstt.train import train
    from tests.train.test_loop import ToneDataset, make_model, tiny_config

    out = tmp_path_factory.mktemp("bench")
    cerberus = tiny_config("trainer.max_steps=2", "trainer.validate_every=2")
    convtasnet = tiny_config("trainer.max_steps=2", "trainer.validate_every=2", "data.sources=[piano,guitar]",
                             *[f"model.separator.options.{k}={v}" for k, v in ASTEROID_TINY.items()], recipe="convtasnet_set4.yaml")
    for name, config in (("cerberus_set1", cerberus), ("convtasnet_set4", convtasnet)):
        train(config, make_model(config), ToneDataset(4, seed=1), ToneDataset(2, seed=2), out / name, progress=False)
    return out


class Oracle:
    """A separator whose stems are the track's own references (or the mixture itself, ``mixture=True``)."""

    def __init__(self, mixture: bool = False) -> None:
        self.mixture = mixture
        self.track: Path | None = None

    def separate(self, mix: np.ndarray, rate: int) -> Any:
        refs, _ = score_stems.references(self.track, len(mix))
        mono = mix.mean(1).astype(np.float64)
        stems = {name: mono if self.mixture else ref for name, ref in refs.items() if name in ("piano", "guitar")}
        return type("Result", (), {"stems": stems})()


def _score(separator: Oracle, test_set: Path) -> dict[str, Any]:
    """score_model one track at a time, telling the oracle which track it separates."""
    per_track: dict[str, Any] = {}
    for track in ood.parse_set(f"t={test_set}").tracks:
        separator.track = track
        per_track.update(ood.score_model(separator, ood.TestSet("t", test_set, [track]))["per_track"])
    return ood.source_summary(per_track)


def test_perfect_stems_beat_the_mixture_and_the_mixture_does_not(test_set):
    perfect = _score(Oracle(), test_set)
    assert set(perfect) == {"piano", "guitar", "bass", "drums", "strings"}  # the organ has no class: other, not separated
    assert perfect["piano"]["songs"] == 2 and perfect["piano"]["beat_mix"] == 2 and perfect["piano"]["median_si_sdri"] > 20
    assert perfect["bass"] == {"songs": 2, "no_stem": 2, "beat_mix": 0, "median_si_sdri": None, "mean_si_sdri": None}
    mixture = _score(Oracle(mixture=True), test_set)
    assert mixture["piano"]["beat_mix"] == 0 and mixture["piano"]["median_si_sdri"] == pytest.approx(0.0, abs=1e-6)


def test_scores_a_bench_folder_of_cerberus_and_convtasnet_and_resumes(tmp_path, bench_folder, test_set, monkeypatch, capsys):
    out = tmp_path / "ood"
    argv = [str(bench_folder), "--set", f"tiny={test_set}", "--out", str(out), "--device", "cpu"]
    assert ood.main(argv) == 0
    result = json.loads((out / "ood_scores.json").read_text())
    assert list(result["models"]) == ["cerberus_set1", "convtasnet_set4"]
    for model in result["models"].values():
        assert model["checkpoint"].endswith("checkpoints/best.pt")
        tiny = model["sets"]["tiny"]
        assert tiny["tracks"] == 2 and tiny["skipped"] == [] and set(tiny["per_track"]) == {"Track01876", "Track01877"}
        piano = tiny["sources"]["piano"]
        assert piano["songs"] == 2 and piano["no_stem"] == 0 and isinstance(piano["median_si_sdri"], float)
        assert tiny["sources"]["bass"]["no_stem"] == 2  # the models separate piano and guitar only
    md = (out / "ood_scores.md").read_text()
    assert "## tiny (" in md and "| model | piano | guitar | bass | drums | strings | seconds |" in md
    assert "| convtasnet_set4 | " in md and "no stem (2 songs)" in md

    monkeypatch.setattr(ood, "score_model", lambda *a: pytest.fail("a finished model + set was scored again"))
    assert ood.main(argv) == 0
    assert "cerberus_set1 on tiny: in " in capsys.readouterr().out
    assert json.loads((out / "ood_scores.json").read_text()) == result


def test_run_folder_checkpoint_and_seed_names(tmp_path, bench_folder):
    seed = tmp_path / "grid" / "cerberus_set1" / "seed0"
    shutil.copytree(bench_folder / "cerberus_set1", seed)
    (seed / "checkpoints" / "best.pt").unlink()  # last.pt stands in for it
    found = ood.find_models([tmp_path / "grid", bench_folder / "convtasnet_set4" / "checkpoints" / "best.pt"])
    assert [(m.name, m.checkpoint.name) for m in found] == [("cerberus_set1/seed0", "last.pt"), ("convtasnet_set4", "best.pt")]


@pytest.mark.parametrize("args, named", [
    (["{empty}", "--set", "t={set}"], "no checkpoints/best.pt or last.pt"),
    (["{missing}", "--set", "t={set}"], "no such file or folder"),
    (["{bench}", "--set", "t"], "write NAME=SPLIT_FOLDER"),
    (["{bench}", "--set", "t={missing}"], "no folder"),
    (["{bench}", "--set", "t={empty}"], "no track folder (metadata.yaml + mix.flac)"),
    (["{bench}", "--set", "t={set}", "--set", "t={set}"], "given twice"),
    (["{bench}", "{bench}", "--set", "t={set}"], "two runs are named 'cerberus_set1'"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, bench_folder, test_set, capsys, args, named):
    (tmp_path / "empty").mkdir()
    paths = {"empty": tmp_path / "empty", "missing": tmp_path / "nowhere", "set": test_set, "bench": bench_folder}
    argv = [a.format(**paths) for a in args] + ["--out", str(tmp_path / "ood")]
    assert ood.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err
    assert not (tmp_path / "ood" / "ood_scores.json").exists()


def test_score_track_of_files_equals_score_estimates_of_arrays(tmp_path, test_set):
    import soundfile as sf

    track = test_set / "Track01876"
    refs, rate = score_stems.references(track, sf.info(str(track / "mix.flac")).frames)
    noisy = {"piano": refs["piano"] + 0.05 * np.random.default_rng(0).standard_normal(len(refs["piano"]))}
    sf.write(str(tmp_path / "piano.wav"), noisy["piano"], rate, subtype="FLOAT")
    from_files = score_stems.score_track(track, tmp_path)[0]
    from_arrays = score_stems.score_estimates(track, noisy)[0]
    assert from_files["piano"] == pytest.approx(from_arrays["piano"], abs=1e-4) and from_files["guitar"] is None


def test_exported_models_side_by_side_are_named_by_file(tmp_path, bench_folder):
    for name in ("release_v1", "release_v2"):
        shutil.copy(bench_folder / "cerberus_set1" / "checkpoints" / "best.pt", tmp_path / f"{name}.pt")
    found = ood.find_models([tmp_path / "release_v1.pt", tmp_path / "release_v2.pt"])
    assert [m.name for m in found] == ["release_v1", "release_v2"]


def test_a_checkpoint_trained_further_is_scored_again(tmp_path, bench_folder, test_set, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(bench_folder / "cerberus_set1", run)
    argv = [str(run), "--set", f"tiny={test_set}", "--out", str(tmp_path / "ood"), "--device", "cpu"]
    calls: list[str] = []
    monkeypatch.setattr(ood, "score_model", lambda sep, t: calls.append(t.name) or {"split": str(t.split), "tracks": 0,
                        "skipped": [], "audio_seconds": 0.0, "seconds": 0.0, "sources": {}, "per_track": {}})
    assert ood.main(argv) == 0 and ood.main(argv) == 0
    assert calls == ["tiny"]  # the second command found it done
    best = run / "checkpoints" / "best.pt"
    os.utime(best, ns=(0, 0))  # the same bytes, copied or touched: still done
    assert ood.main(argv) == 0 and calls == ["tiny"]
    shutil.copy(bench_folder / "convtasnet_set4" / "checkpoints" / "best.pt", best)  # another training's checkpoint
    assert ood.main(argv) == 0
    assert calls == ["tiny", "tiny"]


def test_a_broken_track_is_skipped_and_the_others_still_count(tmp_path, test_set):
    split = tmp_path / "test"
    shutil.copytree(test_set, split)
    stems = split / "Track01877" / "stems"
    next(iter(sorted(stems.glob("*.flac")))).unlink()
    oracle = Oracle()
    tracks = ood.parse_set(f"t={split}").tracks
    oracle.track = tracks[0]
    scored = ood.score_model(oracle, ood.TestSet("t", split, tracks))
    assert list(scored["per_track"]) == ["Track01876"]
    assert [s["track"] for s in scored["skipped"]] == ["Track01877"] and "missing" in scored["skipped"][0]["reason"]
    assert score_stems.main([str(split / "Track01877"), str(tmp_path)]) == 2


def test_an_out_folder_in_use_is_refused(tmp_path, bench_folder, test_set, capsys, monkeypatch):
    import subprocess

    holder = "import sys, time\nfrom mstt.runlock import folder_lock\nwith folder_lock(sys.argv[1], 'x'):\n" \
             "    print('locked', flush=True)\n    time.sleep(60)\n"
    out = tmp_path / "ood"
    proc = subprocess.Popen([sys.executable, "-c", holder, str(out)], cwd=BENCHMARKS.parent, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        monkeypatch.setattr(ood, "score_model", lambda *a: pytest.fail("scored into a folder in use"))
        assert ood.main([str(bench_folder), "--set", f"t={test_set}", "--out", str(out), "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"PID {proc.pid}" in err
    finally:
        proc.kill()
        proc.wait()


def test_a_bad_second_checkpoint_is_refused_before_the_first_is_scored(tmp_path, bench_folder, test_set, monkeypatch, capsys):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(os.urandom(4096))
    monkeypatch.setattr(ood, "score_model", lambda *a: pytest.fail("scored before every checkpoint was checked"))
    argv = [str(bench_folder / "cerberus_set1"), str(bad), "--set", f"t={test_set}", "--out", str(tmp_path / "ood"),
            "--device", "cpu"]
    assert ood.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.pt" in err
