"""Per-example scores collected per source and summarised into the metrics.json blocks.

Averages are NaN-aware: a value that is NaN (a silent reference source, or a transcription
pair where neither side has a note) is left out of the mean rather than counted as 0 or 1.
A source whose every value is NaN reports ``null``. The ``mean`` block is the mean over
sources of the per-source means (each instrument counts once, as the paper's averages do);
the catch-all source ``other`` is reported on its own row but is no instrument, so it is left
out of the means (and never transcribed: it has no transcription row).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from mstt.data.classes import is_instrument

LEVELS = ("frame", "onset", "onset_offset")
PRF = ("precision", "recall", "f1")
DIGITS = 4  # dB to 1e-4 and F1 to 1e-4: beyond any meaningful difference


def _mean(values: list[float]) -> float | None:
    """NaN-aware mean rounded for JSON; None when nothing was scored."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return None
    return round(float(np.mean(finite)), DIGITS)


class ScoreBook:
    """Collects separation and transcription scores per source over examples."""

    def __init__(self, sources: list[str]) -> None:
        self.sources = list(sources)
        self.instruments = [s for s in self.sources if is_instrument(s)]  # what the means average
        self.separation: dict[str, dict[str, list[float]]] = {s: defaultdict(list) for s in self.sources}
        self.transcription: dict[str, dict[str, dict[str, list[float]]]] = {
            s: defaultdict(lambda: defaultdict(list)) for s in self.sources
        }
        self.silent: dict[str, int] = {s: 0 for s in self.sources}  # examples with a silent reference
        self.alone: dict[str, int] = {s: 0 for s in self.sources}  # examples where the source is the whole mixture
        self.scored_separation = 0  # examples scored for separation
        self.scored_transcription = 0

    def add_separation(self, values: dict[str, torch.Tensor], silent: torch.Tensor, alone: torch.Tensor) -> None:
        """Metric values ``{name: (batch, sources)}``; ``silent`` ``(batch, sources)`` marks rows to skip.

        ``alone`` ``(batch, sources)`` marks sources that are their whole mixture (their
        improvement values are already NaN); it is counted for :meth:`notes`.
        """
        silent, alone = silent.detach().cpu(), alone.detach().cpu()
        for name, value in values.items():
            value = value.detach().double().cpu().masked_fill(silent, float("nan"))
            for j, source in enumerate(self.sources):
                self.separation[source][name].extend(value[:, j].tolist())
        for j, source in enumerate(self.sources):
            self.silent[source] += int(silent[:, j].sum())
            self.alone[source] += int(alone[:, j].sum())
        self.scored_separation += silent.shape[0]

    def add_transcription(self, source: str, scores: dict[str, dict[str, float]]) -> None:
        """One example's ``{"frame"|"onset"[|"onset_offset"]: {precision, recall, f1}}`` for ``source``."""
        for level, block in scores.items():
            for key, value in block.items():
                self.transcription[source][level][key].append(float(value))

    def count_transcription(self) -> None:
        """One more example scored for transcription."""
        self.scored_transcription += 1

    def separation_block(self) -> dict[str, dict[str, float | None]] | None:
        """``{source: {metric: mean}, "mean": {metric: mean over sources}}``; None when nothing was separated."""
        if not self.scored_separation:
            return None
        block: dict[str, dict[str, float | None]] = {}
        names: list[str] = []
        for source in self.sources:
            block[source] = {name: _mean(values) for name, values in self.separation[source].items()}
            names += [n for n in block[source] if n not in names]
        block["mean"] = {name: _mean([block[s].get(name) for s in self.instruments]) for name in names}
        return block

    def transcription_block(self) -> dict[str, dict[str, dict[str, float | None]]] | None:
        """``{source: {level: {precision, recall, f1}}, "mean": {...}}``; None when nothing was transcribed."""
        if not self.scored_transcription:
            return None
        block: dict[str, dict[str, dict[str, float | None]]] = {}
        for source in self.instruments:
            levels = self.transcription[source]
            block[source] = {
                level: {key: _mean(levels[level][key]) for key in PRF} for level in LEVELS if level in levels
            }
        mean: dict[str, dict[str, float | None]] = {}
        for level in LEVELS:
            # Drums have no onset_offset: that mean is over the sources that do.
            having = [block[s][level] for s in self.instruments if level in block[s]]
            if having:
                mean[level] = {key: _mean([h[key] for h in having]) for key in PRF}
        block["mean"] = mean
        return block

    def notes(self) -> list[str]:
        """Plain sentences about what the averages leave out."""
        lines = []
        for source, count in self.silent.items():
            if count:
                lines.append(
                    f"{source}: {count} of {self.scored_separation} examples have a silent reference; "
                    f"left out of its separation averages"
                )
        for source, count in self.alone.items():
            if count:
                lines.append(
                    f"{source}: {count} of {self.scored_separation} examples have no other source sounding "
                    f"(the mixture is its reference); left out of its improvement (si_sdri) averages"
                )
        return lines
