"""``mstt bench``: two tiny recipes + an overlay -> bench.json/bench.md; mismatches refused; resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mstt.cli import main

pytest.importorskip("mstt.experiment", reason="mstt.experiment (run_experiment) is not written yet")
pytest.importorskip("mstt_asteroid", reason="the mstt-asteroid plugin is not installed (make setup installs it)")

import mstt.bench  # noqa: E402
import mstt.experiment  # noqa: E402
from mstt.bench import is_overlay  # noqa: E402

BASE = Path(__file__).resolve().parents[1] / "recipes" / "_base" / "common.yaml"

CERBERUS = f"""
base: [{BASE}]
name: tiny_cerberus
features: {{n_fft: 256, hop_length: 64}}
model:
  encoder: {{options: {{hidden_size: 16, num_layers: 1, dropout: 0.0}}}}
  heads: {{dc: {{weight: 0.1, options: {{embedding_dim: 4}}}}, mi: {{weight: 0.1}}, tr: {{weight: 0.8}}}}
"""
CONVTASNET = f"""
base: [{BASE}]
name: tiny_convtasnet
features: {{n_fft: 256, hop_length: 64}}
model:
  separator:
    name: convtasnet
    options: {{n_filters: 16, bn_chan: 8, hid_chan: 16, skip_chan: 8, n_blocks: 2, n_repeats: 1}}
"""
# No name: and no base: -> an overlay, applied to both recipes.
OVERLAY = """
data:
  sources: [piano, guitar]
  sample_rate: 8000
  crop_seconds: 1.0
  eval_segment_seconds: 2.0
  options: {tracks: 3, seconds: 4.0, jobs: 1}
trainer: {batch_size: 2, max_steps: 3, validate_every: 3, log_every: 1, num_workers: 0, device: cpu}
eval: {report_examples: 0}
"""
ROW_KEYS = {"recipe", "params", "si_sdri", "onset_f1", "train_throughput", "rtf", "peak_memory_mb", "device"}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """The tiny recipes and the overlay, written into tmp_path."""
    paths = {}
    for name, text in (("cerberus", CERBERUS), ("convtasnet", CONVTASNET), ("overlay", OVERLAY)):
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(text)
    return paths


@pytest.fixture
def trained(monkeypatch) -> list[str]:
    """Names of the recipes run_experiment is called for; the first call for tiny_convtasnet is interrupted."""
    calls: list[str] = []
    real = mstt.experiment.run_experiment

    def spy(config, out, progress=True, **kwargs):
        calls.append(str(config.name))
        if calls.count("tiny_convtasnet") == 1 and config.name == "tiny_convtasnet":
            raise KeyboardInterrupt  # as a Ctrl-C during the second recipe would
        return real(config, out, progress=progress, **kwargs)

    monkeypatch.setattr(mstt.experiment, "run_experiment", spy)
    return calls


def test_overlays_are_files_without_name_or_base(files):
    assert is_overlay(files["overlay"]) and is_overlay(Path(__file__).parents[1] / "recipes" / "quick.yaml")
    assert not is_overlay(files["cerberus"]) and not is_overlay(Path(__file__).parents[1] / "recipes" / "cerberus_set4.yaml")


def test_bench_writes_rows_keeps_them_when_interrupted_and_resumes(files, tmp_path, trained, monkeypatch):
    monkeypatch.setattr(mstt.bench, "RTF_SECONDS", 4.0)  # the 30-s mixture is for real benches
    out = tmp_path / "bench"
    args = ["bench", str(files["cerberus"]), str(files["convtasnet"]), str(files["overlay"]), "--out", str(out), "--no-progress"]

    assert main(args) == 130  # interrupted during the second recipe
    first = json.loads((out / "bench.json").read_text())["rows"]
    assert [r["recipe"] for r in first] == ["tiny_cerberus"]

    assert main(args) == 0  # resumes: the finished recipe is only re-read
    assert trained == ["tiny_cerberus", "tiny_convtasnet", "tiny_convtasnet"]
    rows = json.loads((out / "bench.json").read_text())["rows"]
    assert [r["recipe"] for r in rows] == ["tiny_cerberus", "tiny_convtasnet"]
    assert rows[0] == first[0]
    for row in rows:
        assert ROW_KEYS <= set(row)
        assert row["params"] > 0 and row["train_throughput"] > 0 and row["rtf"] > 0 and row["peak_memory_mb"] > 0
        assert row["device"].startswith("cpu: ")
        assert set(row["si_sdri"]) == {"piano", "guitar", "mean"}
    assert set(rows[0]["onset_f1"]) == {"piano", "guitar", "mean"}
    assert rows[1]["onset_f1"] is None  # a separator does not transcribe
    assert rows[0]["steps"] == rows[1]["steps"] == 3  # the overlay's budget applied to both
    table = (out / "bench.md").read_text()
    assert "| tiny_cerberus |" in table and "| tiny_convtasnet |" in table

    assert main(args) == 0  # all finished: nothing trains again
    assert len(trained) == 3


@pytest.mark.parametrize(
    "override, key",
    [("data.sample_rate=8000", "data.sample_rate"), ("data.sources=[piano,bass]", "data.sources"), ("data.kind=slakh", "data.kind")],
)
def test_mismatched_data_is_refused_before_training(files, tmp_path, trained, capsys, override, key):
    other = tmp_path / "other.yaml"
    section, field = key.split(".")
    other.write_text(CONVTASNET + f"{section}:\n  {field}: {override.split('=', 1)[1]}\n")
    out = tmp_path / "bench"
    code = main(["bench", str(files["cerberus"]), str(other), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert key in err[0] and str(other) in err[0] and "same data" in err[0]
    assert trained == [] and not out.exists()


def test_same_name_twice_is_refused(files, tmp_path, capsys):
    code = main(["bench", str(files["cerberus"]), str(files["cerberus"]), "--out", str(tmp_path / "b")])
    assert code == 2 and "needs its own name" in capsys.readouterr().err
