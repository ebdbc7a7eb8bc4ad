"""Training-time remixing: each source of a crop at a random gain, the mixture re-summed."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


class GainAugmented(Dataset):
    """Wraps a training dataset: ``sources (S, samples)`` scaled by gains uniform in ±``max_db``.

    The mixture is re-summed from the scaled sources, so it stays their sum (every adapter's
    mixture is the sum of the recipe's sources). A fixed synthetic or Slakh mix has one balance
    between instruments; real recordings have many, and a model trained on one balance
    misjudges quiet or loud sources elsewhere. Gains depend on (seed, epoch, index) only, so
    runs repeat and resume exactly. Rolls are unchanged: a quieter note is still a note.
    """

    def __init__(self, dataset: Dataset, max_db: float, seed: int) -> None:
        if max_db < 0:
            raise ValueError(f"max_db must be 0 or more, not {max_db}")
        self.dataset = dataset
        self.max_db = float(max_db)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch on (new crops) and draw new gains."""
        self.epoch = epoch
        inner = getattr(self.dataset, "set_epoch", None)
        if callable(inner):
            inner(epoch)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        sources: torch.Tensor = item["sources"]
        rng = np.random.default_rng([self.seed, self.epoch, index, 0x6A1])
        db = rng.uniform(-self.max_db, self.max_db, size=sources.shape[0])
        gains = torch.from_numpy(10.0 ** (db / 20.0)).to(sources.dtype)
        item["sources"] = sources * gains[:, None]
        item["mixture"] = item["sources"].sum(dim=0)
        return item

    def __getattr__(self, name: str) -> Any:
        # Everything else (adapter, tracks, ...) is the wrapped dataset's.
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
