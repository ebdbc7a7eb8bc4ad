"""Fine-tuning (``model.init``): a fresh run starts from a bundled model's or a checkpoint's weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mstt.cli import main
from mstt.errors import MsttError
from mstt.train import load_checkpoint, train
from mstt.train.checkpoint import recipe_difference, save_checkpoint
from mstt.train.init import initialise
from tests.train.test_loop import RECIPES, ToneDataset, make_model, tiny_config


def exported_weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "default.pt", weights_only=True)["model"]


def test_same_sources_load_every_weight_the_export_holds(bundled):
    config = tiny_config("model.init=default")
    model = make_model(config, seed=5)
    dc_before = model.heads["dc"].linear.weight.detach().clone()
    lines = initialise(model, config)
    saved = exported_weights(bundled)
    own = model.state_dict()
    for key, value in saved.items():
        torch.testing.assert_close(own[key], value.float(), msg=key)
    torch.testing.assert_close(model.heads["dc"].linear.weight, dc_before)  # the export left dc out: it starts afresh
    assert lines == [
        "model.init: weights from default (step 2 there), trunk and heads mi, tr loaded; training starts at step 0 with a fresh optimiser",
        "model.init: heads dc start afresh (default.pt has none)",
    ]


def test_other_sources_reinitialise_the_heads_that_depend_on_them(bundled, tmp_path, capsys):
    config = tiny_config("model.init=default", "data.sources=[piano,guitar,bass]", "trainer.max_steps=3")
    model = make_model(config, seed=5)
    mask_before = model.heads["mi"].linear.weight.detach().clone()
    result = train(config, model, ToneDataset(4, seed=1, n_sources=3), ToneDataset(2, seed=2, n_sources=3), tmp_path / "run",
                   progress=False)
    assert result.step == 3
    printed = capsys.readouterr().out
    assert ("model.init: re-initialised heads mi, tr (their shapes depend on the sources: piano, guitar there, "
            "piano, guitar, bass here)") in printed
    assert "model.init: weights from default (step 2 there), trunk loaded" in printed
    # Step 0, fresh optimiser: the run's own checkpoint counts from the start.
    saved = load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert saved["step"] == 3 and saved["history"][0]["step"] == 3
    assert saved["model"]["heads.mi.linear.weight"].shape == mask_before.shape


def test_same_sources_in_another_order_are_other_sources(bundled):
    config = tiny_config("model.init=default", "data.sources=[guitar,piano]")
    lines = initialise(make_model(config), config)
    assert "re-initialised heads mi, tr (their shapes depend on the sources: piano, guitar there, guitar, piano here)" in lines[1]


def test_a_few_fine_tuning_steps_from_the_bundled_model(bundled, tmp_path, capsys):
    config = tiny_config("model.init=default", "trainer.max_steps=3")
    result = train(config, make_model(config), ToneDataset(4, seed=1), ToneDataset(2, seed=2), tmp_path / "run", progress=False)
    assert (result.step, result.stopped) == (3, "max_steps")
    assert "model.init: weights from default" in capsys.readouterr().out


def test_another_trunk_is_one_line_naming_the_parameter_and_both_shapes(bundled):
    config = tiny_config("model.init=default", "model.encoder.options.hidden_size=12")
    with pytest.raises(MsttError) as info:
        initialise(make_model(config), config)
    message = str(info.value)
    assert message.startswith(f"model.init=default ({bundled / 'default.pt'}): parameter encoder.lstm.weight_ih_l0 is")
    assert "is 64x129 there but 48x129 in this recipe's model; fine-tuning needs the same trunk" in message


def test_another_front_end_is_refused_naming_the_key(bundled):
    config = tiny_config("model.init=default", "features.hop_length=128")
    with pytest.raises(MsttError, match=r"features.hop_length is 64 there but 128 in this recipe; .* set features.hop_length=64"):
        initialise(make_model(config), config)


def test_dry_run_checks_that_the_init_exists_and_fits(bundled, capsys):
    recipe = str(RECIPES / "cerberus_set1.yaml")
    tiny = ["data.sample_rate=8000", "features.n_fft=256", "features.hop_length=64", "model.encoder.options.hidden_size=16",
            "model.encoder.options.num_layers=1", "model.heads.dc.options.embedding_dim=4"]
    assert main(["run", recipe, *tiny, "model.init=default", "--dry-run"]) == 0
    assert "# model.init: weights from default (step 2 there)" in capsys.readouterr().out
    assert main(["run", recipe, *tiny, "model.init=nosuch", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("mstt: error: model.init=nosuch: no such checkpoint and no bundled model of that name; "
                   "bundled models: default (mstt models lists them)")


def test_run_refuses_a_missing_init_before_rendering_any_data(bundled, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MSTT_CACHE", str(cache))
    assert main(["run", str(RECIPES / "cerberus_set1.yaml"), "model.init=gone.pt", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith("mstt: error: model.init=gone.pt: no such checkpoint; bundled models: default")
    assert not cache.exists()
    # A folder holding a run resumes from its last.pt: model.init is not read then.
    (tmp_path / "run/checkpoints").mkdir(parents=True)
    (tmp_path / "run/checkpoints/last.pt").write_bytes(b"")
    assert main(["run", str(RECIPES / "cerberus_set1.yaml"), "model.init=gone.pt", "--out", str(tmp_path / "run"), "--dry-run"]) == 0
    assert f"# model.init: not read; {tmp_path / 'run'} holds a run, which resumes from its last.pt" in capsys.readouterr().out


def test_resuming_takes_precedence_over_init(bundled, tmp_path, capsys):
    config = tiny_config("model.init=default", "trainer.max_steps=2")
    train(config, make_model(config), ToneDataset(4, seed=1), ToneDataset(2, seed=2), tmp_path / "run", progress=False)
    # The init file is gone and the budget raised: the run resumes from last.pt and never reads model.init.
    later = tiny_config("model.init=gone/best.pt", "trainer.max_steps=4")
    result = train(later, make_model(later), ToneDataset(4, seed=1), ToneDataset(2, seed=2), tmp_path / "run", progress=False)
    assert result.step == 4
    assert "resumed from step 2 (model.init=gone/best.pt applies to a fresh run only)" in capsys.readouterr().out


def test_a_run_started_before_model_init_existed_still_resumes(tmp_path, capsys):
    config = tiny_config("trainer.max_steps=2")
    train(config, make_model(config), ToneDataset(4, seed=1), ToneDataset(2, seed=2), tmp_path / "run", progress=False)
    last = tmp_path / "run/checkpoints/last.pt"
    payload = load_checkpoint(last)
    del payload["recipe"]["model"]["init"]  # as an older mstt wrote it
    save_checkpoint(payload, last)
    assert recipe_difference(payload["recipe"], {**payload["recipe"], "model": {**payload["recipe"]["model"], "init": None}}) is None
    later = tiny_config("trainer.max_steps=3")
    assert train(later, make_model(later), ToneDataset(4, seed=1), ToneDataset(2, seed=2), tmp_path / "run", progress=False).step == 3
    assert "resumed from step 2" in capsys.readouterr().out
