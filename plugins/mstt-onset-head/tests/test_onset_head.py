"""The onset plugin: registered through its entry point, trains, and splits repeated notes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from mstt_onset_head import OnsetHead, OnsetHeadOptions, OnsetLoss, OnsetLossOptions, decode_with_onsets

from mstt.decode import NoteDecoding
from mstt.features import STFT, make_targets
from mstt.nn.build import build_model
from mstt.plugins import build_registry
from mstt.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[3] / "recipes"


def test_registered_through_the_entry_point():
    registry = build_registry()
    head = registry.get("heads", "onset")
    assert head.plugin == "mstt-onset-head"
    assert head.info["loss"] == "onset_bce" and head.info["output"] == "onset"
    assert registry.get("losses", "onset_bce").plugin == "mstt-onset-head"


def test_head_shape_and_loss_descends():
    head = OnsetHead(16, 2, 33, OnsetHeadOptions(hidden_size=8))
    trunk = torch.randn(1, 20, 16)
    assert head(trunk).shape == (1, 2, 88, 20)
    stft = STFT(64, 16)
    src = torch.randn(1, 2, 16 * 19)
    onset = torch.zeros(1, 2, 88, 20)
    onset[0, 0, 40, 5] = 1
    targets = make_targets(stft, {"mixture": src.sum(1), "sources": src, "onset": onset})
    loss_fn = OnsetLoss(OnsetLossOptions())
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = loss_fn(head(trunk), targets).item()
    for _ in range(100):
        optimiser.zero_grad()
        loss = loss_fn(head(trunk), targets)
        loss.backward()
        optimiser.step()
    assert loss.item() < first / 10


def test_onsets_split_a_repeated_note():
    roll = torch.zeros(1, 88, 40)
    roll[0, 39, 5:30] = 1.0  # one long frame run...
    onsets = torch.zeros(1, 88, 40)
    onsets[0, 39, 5] = onsets[0, 39, 18] = 1.0  # ...that is really two notes
    frame_rate = 10.0
    plain = decode_with_onsets(roll, torch.zeros_like(onsets), frame_rate, NoteDecoding(0.4, None, 2))[0]
    split = decode_with_onsets(roll, onsets, frame_rate, NoteDecoding(0.4, None, 2))[0]
    assert len(plain) == 1  # no detected onset: the run is one note, as the frame roll alone reads it
    assert len(split) == 2
    np.testing.assert_allclose(split[:, 0], [0.5, 1.8])
    np.testing.assert_allclose(split[:, 1], [1.8, 3.0])  # the first note ends where the repeat starts


def test_onsets_recipe_builds_the_onset_head():
    model = build_model(load_recipe([RECIPES / "cerberus_onsets_set4.yaml"]))
    assert set(model.heads) == {"dc", "mi", "tr", "onset"}
    assert model.specs["onset"].decode is decode_with_onsets
