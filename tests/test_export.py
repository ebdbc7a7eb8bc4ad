"""``mstt export``: an inference-only checkpoint that mstt.load and mstt separate read."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import mstt
from mstt.cli import main
from mstt.export import export_checkpoint
from tests.test_inference import checkpoint, make_checkpoint, tones  # noqa: F401  (fixtures)


@pytest.mark.parametrize("half", [False, True])
def test_export_keeps_what_inference_needs(tmp_path, checkpoint, half):  # noqa: F811
    out = export_checkpoint(checkpoint, tmp_path / "model.pt", half=half)
    data = torch.load(out, weights_only=True)
    assert {"optimizer", "scheduler", "rng", "history"}.isdisjoint(data)
    assert data["format"] == "mstt-checkpoint" and data["format_version"] == 1 and data["inference_only"] is True
    assert data["mstt_version"] == mstt.__version__ and data["plugins"] == {"builtin": mstt.__version__}
    assert data["recipe"]["name"] == "cerberus_set1"
    dtypes = {v.dtype for v in data["model"].values() if v.is_floating_point()}
    assert dtypes == ({torch.float16} if half else {torch.float32})
    assert out.stat().st_size < checkpoint.stat().st_size * (0.3 if half else 0.6)

    x = tones(2.0, 8000)
    original = mstt.load(checkpoint, device="cpu").separate(x, 8000)
    exported = mstt.load(out, device="cpu").separate(x, 8000)
    tolerance = 2e-2 if half else 1e-6
    for name in original.stems:
        np.testing.assert_allclose(exported.stems[name], original.stems[name], atol=tolerance)
        np.testing.assert_allclose(exported.rolls[name], original.rolls[name], atol=tolerance)


def test_export_cli_and_separate_with_the_export(tmp_path, capsys, checkpoint):  # noqa: F811
    out = tmp_path / "small.pt"
    assert main(["export", str(checkpoint), str(out), "--half"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 16000), 16000)
    assert main(["separate", str(out), str(song), "--out", str(tmp_path / "sep"), "--quiet"]) == 0
    assert sf.info(tmp_path / "sep" / "song" / "piano.wav").samplerate == 16000


def test_export_of_a_file_that_is_no_checkpoint(tmp_path, capsys):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"\x00" * 10)
    assert main(["export", str(bogus), str(tmp_path / "out.pt")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"mstt: error: {bogus} is not a torch checkpoint")
    assert not (tmp_path / "out.pt").exists()


def test_export_refuses_to_overwrite_its_source(tmp_path, checkpoint, capsys):  # noqa: F811
    assert main(["export", str(checkpoint), str(checkpoint)]) == 2
    assert "would overwrite the checkpoint being exported" in capsys.readouterr().err
    assert "optimizer" in torch.load(checkpoint, weights_only=True)


def test_export_lists_only_the_plugins_the_recipe_uses(tmp_path):
    path = make_checkpoint(tmp_path / "c.pt", plugins={"builtin": "0.1.0", "mstt-asteroid": "0.2.0", "other": "1.0"})
    out = export_checkpoint(path, tmp_path / "e.pt")
    assert torch.load(out, weights_only=True)["plugins"] == {"builtin": "0.1.0"}


def test_export_leaves_out_heads_inference_does_not_read(tmp_path, checkpoint):  # noqa: F811
    dropped = torch.load(export_checkpoint(checkpoint, tmp_path / "small.pt"), weights_only=True)
    assert dropped["dropped_heads"] == ["dc"] and dropped["recipe"]["model"]["heads"]["dc"]["weight"] == 0
    assert not any(k.startswith("heads.dc.") for k in dropped["model"])
    kept = torch.load(export_checkpoint(checkpoint, tmp_path / "all.pt", all_heads=True), weights_only=True)
    assert kept["dropped_heads"] == [] and any(k.startswith("heads.dc.") for k in kept["model"])
    # A monitor on the dropped head moves to the total, so that the saved recipe still builds.
    path = make_checkpoint(tmp_path / "monitored.pt", overrides=("trainer.monitor=loss/dc",))
    exported = export_checkpoint(path, tmp_path / "m.pt")
    assert torch.load(exported, weights_only=True)["recipe"]["trainer"]["monitor"] == "loss"
    assert list(mstt.load(exported, device="cpu").model.heads) == ["mi", "tr"]
