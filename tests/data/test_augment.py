"""Remixing augmentation: random per-source gains and EQ, the mixture re-summed, repeatable per epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mstt.data.augment import RemixAugmented, random_eq_db


class Crops(Dataset):
    """Three items of 2 sources (plus an optional accompaniment in the mixture); counts set_epoch calls."""

    def __init__(self, accompaniment: float = 0.0, samples: int = 8) -> None:
        self.epochs: list[int] = []
        self.adapter = "the adapter"
        self.accompaniment = accompaniment
        self.samples = samples

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> dict:
        t = torch.arange(self.samples, dtype=torch.float32)
        sources = torch.stack([torch.sin(0.05 * t * (k + 1) * (index + 1)) + 1.0 for k in range(2)])
        mixture = sources.sum(0) + self.accompaniment
        return {"sources": sources, "mixture": mixture, "roll": torch.zeros(2, 88, 1)}


def test_sources_get_gains_within_range_and_the_mixture_stays_their_sum():
    inner = Crops()
    data = RemixAugmented(inner, gain_db=6.0, seed=0)
    item = data[1]
    gains = item["sources"][:, 0] / inner[1]["sources"][:, 0]
    assert torch.all(gains >= 10 ** (-6 / 20) - 1e-6) and torch.all(gains <= 10 ** (6 / 20) + 1e-6)
    assert not torch.allclose(gains[0], gains[1])
    torch.testing.assert_close(item["mixture"], item["sources"].sum(0))
    assert torch.equal(item["roll"], inner[1]["roll"])
    assert len(data) == 3 and data.adapter == "the adapter"


def test_accompaniment_in_the_mixture_keeps_its_level():
    inner = Crops(accompaniment=0.25)
    item = RemixAugmented(inner, gain_db=6.0, seed=0, eq_db=6.0)[0]
    torch.testing.assert_close(item["mixture"] - item["sources"].sum(0), torch.full((8,), 0.25))


def test_gains_repeat_for_an_epoch_and_change_between_epochs():
    inner = Crops()
    data = RemixAugmented(inner, gain_db=6.0, seed=0)
    first = data[0]["sources"]
    assert torch.equal(RemixAugmented(Crops(), 6.0, seed=0)[0]["sources"], first)
    data.set_epoch(1)
    assert inner.epochs == [1]
    assert not torch.equal(data[0]["sources"], first)


def test_zero_db_changes_nothing_and_negative_is_refused():
    inner = Crops()
    torch.testing.assert_close(RemixAugmented(inner, 0.0, seed=0)[2]["sources"], inner[2]["sources"])
    with pytest.raises(ValueError, match="gain_db"):
        RemixAugmented(inner, -1.0, seed=0)
    with pytest.raises(ValueError, match="eq_db"):
        RemixAugmented(inner, 0.0, seed=0, eq_db=-2.0)


def test_random_eq_is_smooth_and_within_its_range():
    freqs = np.fft.rfftfreq(32000, 1 / 16000)
    for seed in range(20):
        curve = random_eq_db(np.random.default_rng(seed), freqs, 9.0)
        assert curve.shape == freqs.shape and np.abs(curve).max() <= 9.0
        assert np.abs(np.diff(curve[freqs > 100])).max() < 0.2  # dB between neighbouring bins: no notches
    assert np.ptp(random_eq_db(np.random.default_rng(0), freqs, 9.0)) > 3.0  # it does change the timbre


def test_eq_changes_each_source_spectrum_by_its_curve():
    samples = 4000
    inner = Crops(samples=samples)
    item = RemixAugmented(inner, gain_db=0.0, seed=3, eq_db=9.0)[0]
    before = torch.fft.rfft(inner[0]["sources"], dim=-1).abs()
    after = torch.fft.rfft(item["sources"], dim=-1).abs()
    ratio_db = 20 * torch.log10(after / before)[:, before.amin(0) > 1.0]
    assert ratio_db.abs().max() <= 9.0 + 1e-3
    assert ratio_db.abs().max() > 0.5  # changed
    assert not torch.allclose(ratio_db[0], ratio_db[1])  # each source its own curve
    torch.testing.assert_close(item["mixture"], item["sources"].sum(0))
