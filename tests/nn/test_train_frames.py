"""model.heads.<key>.train_frames: a frame_local head trains on a random subset of frames."""

from __future__ import annotations

import pytest
import torch

from mstt.errors import RecipeError
from mstt.features import make_targets
from mstt.features.stft import STFT
from mstt.nn.build import build_model
from mstt.nn.model import random_frames, spaced_frames
from mstt.registry import Registry
from tests.train.test_loop import tiny_config


def batch_for(config, examples: int = 2):
    samples = int(config.data.sample_rate * config.data.crop_seconds)
    sources = torch.randn(examples, len(config.data.sources), samples) * 0.1
    frames = 1 + samples // config.features.hop_length
    roll = (torch.rand(examples, len(config.data.sources), 88, frames) > 0.9).float()
    return {"mixture": sources.sum(1), "sources": sources, "roll": roll, "onset": roll}


@pytest.mark.parametrize("pick", [random_frames, spaced_frames])
def test_frame_subsets_are_sorted_distinct_and_sized(pick):
    frames = pick(100, 0.25, torch.device("cpu"))
    assert len(frames) == 25 and frames.unique().numel() == 25 and bool((frames.diff() > 0).all())
    assert 0 <= int(frames.min()) and int(frames.max()) <= 99
    assert len(pick(3, 0.01, torch.device("cpu"))) == 1


def test_targets_at_frames_pick_the_same_columns_of_every_frame_grid_field():
    stft = STFT(256, 64)
    batch = {"mixture": torch.randn(2, 2048), "sources": torch.randn(2, 3, 2048), "roll": torch.rand(2, 3, 88, 33)}
    targets = make_targets(stft, batch)
    frames = torch.tensor([0, 5, 32])
    picked = targets.at_frames(frames)
    assert torch.equal(picked.mixture_spec, targets.mixture_spec[..., frames])
    assert torch.equal(picked.source_spec, targets.source_spec[..., frames])
    assert torch.equal(picked.roll, targets.roll[..., frames])
    assert picked.onset is None and picked.source_wave is None


def test_the_dc_head_sees_a_random_subset_in_training_spaced_frames_in_validation_and_all_in_inference():
    config = tiny_config("model.heads.dc.train_frames=0.25")
    model = build_model(config)
    batch = batch_for(config)
    seen = []
    model.heads["dc"].register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))
    all_frames = 1 + batch["mixture"].shape[-1] // config.features.hop_length
    model.train()
    total, per_head = model.losses(batch)
    assert seen[-1] == round(0.25 * all_frames) and torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        first = model.losses(batch)[0]
        assert seen[-1] == round(0.25 * all_frames)
        assert torch.equal(first, model.losses(batch)[0])  # validation: the same frames every time
        assert model(batch["mixture"])["embedding"].shape[2] == all_frames
    assert seen[-1] == all_frames


def test_train_frames_of_one_changes_nothing():
    config = tiny_config()
    model = build_model(config)
    batch = batch_for(config)
    torch.manual_seed(3)
    a = model.losses(batch)[0]
    model.specs["dc"].train_frames = 1.0
    torch.manual_seed(3)
    assert torch.equal(a, model.losses(batch)[0])


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1", "nan"])
def test_train_frames_outside_zero_one_is_refused(value):
    # NaN is refused by the recipe loader's finite-number check, the rest by the range check.
    with pytest.raises(RecipeError, match=r"model.heads.dc.train_frames: \S+ must be (in \(0, 1\]|a finite number)"):
        build_model(tiny_config(f"model.heads.dc.train_frames={value}"))


def test_a_head_that_mixes_frames_cannot_train_on_a_subset():
    from mstt.nn.heads import PianoRollHead
    from mstt.plugins import get_registry

    registry = Registry()
    for kind in ("encoders", "heads", "losses", "datasets", "metrics", "separators"):
        for component in get_registry().components(kind):
            registry.add(component)
    # A head that did not declare frame_local (the default for third-party heads).
    registry.register_callback("heads", "test-plugin")("mixing", PianoRollHead, output="mixed", loss="transcription")
    config = tiny_config("model.heads.mixing.weight=1", "model.heads.mixing.train_frames=0.5")
    with pytest.raises(RecipeError, match="did not register frame_local=True"):
        build_model(config, registry)
