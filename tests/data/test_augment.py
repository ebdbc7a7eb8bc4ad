"""Remixing augmentation: random per-source gains, the mixture re-summed, repeatable per epoch."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from mstt.data.augment import GainAugmented


class Crops(Dataset):
    """Three items of 2 sources; counts set_epoch calls."""

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.adapter = "the adapter"

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> dict:
        sources = torch.ones(2, 8) * (index + 1)
        return {"sources": sources, "mixture": sources.sum(0), "roll": torch.zeros(2, 88, 1)}


def test_sources_get_gains_within_range_and_the_mixture_stays_their_sum():
    inner = Crops()
    data = GainAugmented(inner, max_db=6.0, seed=0)
    item = data[1]
    gains = item["sources"][:, 0] / 2.0
    assert torch.all(gains >= 10 ** (-6 / 20) - 1e-6) and torch.all(gains <= 10 ** (6 / 20) + 1e-6)
    assert not torch.allclose(gains[0], gains[1])
    torch.testing.assert_close(item["mixture"], item["sources"].sum(0))
    assert torch.equal(item["roll"], inner[1]["roll"])
    assert len(data) == 3 and data.adapter == "the adapter"


def test_gains_repeat_for_an_epoch_and_change_between_epochs():
    inner = Crops()
    data = GainAugmented(inner, max_db=6.0, seed=0)
    first = data[0]["sources"]
    assert torch.equal(GainAugmented(Crops(), 6.0, seed=0)[0]["sources"], first)
    data.set_epoch(1)
    assert inner.epochs == [1]
    assert not torch.equal(data[0]["sources"], first)


def test_zero_db_changes_nothing_and_negative_is_refused():
    inner = Crops()
    torch.testing.assert_close(GainAugmented(inner, 0.0, seed=0)[2]["sources"], inner[2]["sources"])
    with pytest.raises(ValueError, match="max_db"):
        GainAugmented(inner, -1.0, seed=0)
