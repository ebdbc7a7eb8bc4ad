"""Training-time remixing: each source of a crop at a random gain and equalisation, the mixture re-summed."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

EQ_BANDS = 3  # random peaks and dips per source, on top of a random tilt
EQ_LOW_HZ, EQ_HIGH_HZ = 60.0, 6000.0  # band centres are log-uniform in this range


def random_eq_db(rng: np.random.Generator, freqs_hz: np.ndarray, max_db: float) -> np.ndarray:
    """A smooth random response in dB over ``freqs_hz``, within ±``max_db``.

    A tilt (spectral slope through 1 kHz) plus :data:`EQ_BANDS` Gaussian bumps on a log-frequency
    axis, one octave wide on average: the brightness and formant differences between two
    soundfonts' pianos, or between a synth and a recorded guitar, rather than narrow notches.
    """
    octaves = np.log2(np.maximum(freqs_hz, 20.0) / 1000.0)
    response = rng.uniform(-1.0, 1.0) * max_db / 4.0 * octaves  # up to max_db/4 per octave
    centres = np.log2(np.exp(rng.uniform(np.log(EQ_LOW_HZ), np.log(EQ_HIGH_HZ), EQ_BANDS)) / 1000.0)
    widths = rng.uniform(0.4, 1.5, EQ_BANDS)
    gains = rng.uniform(-max_db, max_db, EQ_BANDS)
    for centre, width, gain in zip(centres, widths, gains):
        response = response + gain * np.exp(-0.5 * ((octaves - centre) / width) ** 2)
    return np.clip(response, -max_db, max_db)


class RemixAugmented(Dataset):
    """Wraps a training dataset: each of ``sources (S, samples)`` at a random gain and EQ.

    Gains are uniform in ±``gain_db``; each source is filtered by :func:`random_eq_db` within
    ±``eq_db`` (0 turns either off). The mixture is re-summed from the changed sources plus
    whatever accompaniment it held (audio no source owns), which keeps its level. A fixed
    synthetic or Slakh mix has one balance and one timbre per instrument; real recordings have
    many, and a model trained on one misjudges the others. Draws depend on (seed, epoch, index)
    only, so runs repeat and resume exactly. Rolls are unchanged: a quieter or duller note is
    still a note.
    """

    def __init__(self, dataset: Dataset, gain_db: float, seed: int, eq_db: float = 0.0,
                 sample_rate: int = 16000) -> None:
        for name, value in (("gain_db", gain_db), ("eq_db", eq_db)):
            if value < 0:
                raise ValueError(f"{name} must be 0 or more, not {value}")
        self.dataset = dataset
        self.gain_db = float(gain_db)
        self.eq_db = float(eq_db)
        self.sample_rate = int(sample_rate)  # of the crops: places the EQ bands in Hz
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch on (new crops) and draw new gains and responses."""
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
        db = rng.uniform(-self.gain_db, self.gain_db, size=sources.shape[0])
        changed = sources * torch.from_numpy(10.0 ** (db / 20.0)).to(sources.dtype)[:, None]
        if self.eq_db > 0:
            changed = self._equalise(changed, rng)
        accompaniment = item["mixture"] - sources.sum(dim=0)
        item["sources"] = changed
        item["mixture"] = changed.sum(dim=0) + accompaniment
        return item

    def _equalise(self, sources: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Every source through its own random response (one FFT of the whole crop)."""
        samples = sources.shape[-1]
        freqs = np.fft.rfftfreq(samples, 1.0 / self.sample_rate)
        curves = np.stack([random_eq_db(rng, freqs, self.eq_db) for _ in range(sources.shape[0])])
        gains = torch.from_numpy(10.0 ** (curves / 20.0)).to(sources.dtype)
        # A smooth response has a short impulse response, so the FFT's circular wrap is inaudible.
        return torch.fft.irfft(torch.fft.rfft(sources, dim=-1) * gains, n=samples, dim=-1)

    def __getattr__(self, name: str) -> Any:
        # Everything else (adapter, tracks, ...) is the wrapped dataset's.
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
