"""mstt plugin: an ``onset`` head (Onsets-and-Frames style) with its loss and note decoding.

The head predicts, per source and key, the probability that a note starts in each frame.
Its loss is binary cross-entropy against the onset roll the datasets provide. At decoding
time an onset it detects inside a sustained run of the transcription head's roll splits the
run into two notes (repeated notes that a frame roll alone merges). Each run still starts a
note where it starts, onset detected or not: the Onsets-and-Frames gate (a run may begin a note
only near a detected onset) dropped most bass and string notes of models trained for CPU
minutes, whose onset heads had not learned those instruments' onsets yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mstt import hookimpl
from mstt.decode.notes import NoteDecoding, decode_notes
from mstt.features.rolls import N_KEYS

ONSET_THRESHOLD = 0.5  # onset probability that counts as a detected onset when decoding
# Whether a frame run may start a note only within a frame of a detected onset. Chosen on the
# validation split (benchmarks/onset_decoding.py, README "Decoding rule").
REQUIRE_ONSET = False


@dataclass
class OnsetHeadOptions:
    """Options of the onset head."""

    hidden_size: int = 128  # a small hidden layer: onsets are sharper than frames


class OnsetHead(nn.Module):
    """Per-source onset logits: 88 keys from MIDI 21, one column per STFT frame."""

    def __init__(self, in_features: int, n_sources: int, n_freq: int, options: OnsetHeadOptions) -> None:
        super().__init__()
        self.n_sources = n_sources
        self.net = nn.Sequential(
            nn.Linear(in_features, options.hidden_size),
            nn.ReLU(),
            nn.Linear(options.hidden_size, n_sources * N_KEYS),
        )

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, in_features)`` -> onset logits ``(batch, sources, 88, frames)``."""
        batch, frames, _ = trunk.shape
        return self.net(trunk).view(batch, frames, self.n_sources, N_KEYS).permute(0, 2, 3, 1)


@dataclass
class OnsetLossOptions:
    """Options of the onset loss."""

    pos_weight: float = 5.0  # onsets are rarer than active frames; count them more


class OnsetLoss:
    """Binary cross-entropy between onset logits and the reference onset roll."""

    def __init__(self, options: OnsetLossOptions) -> None:
        self.options = options

    def __call__(self, logits: torch.Tensor, targets) -> torch.Tensor:
        """Scalar loss; ``targets.onset`` is ``(batch, sources, 88, frames)`` in {0, 1}."""
        if targets.onset is None:
            raise ValueError("the onset loss needs onset targets; the dataset gives none")
        weight = torch.as_tensor(self.options.pos_weight, dtype=logits.dtype, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, targets.onset.to(logits.dtype), pos_weight=weight)


def decode_with_onsets(
    roll: torch.Tensor, onsets: torch.Tensor, frame_rate: float, decoding: NoteDecoding,
    require_onset: bool = REQUIRE_ONSET,
) -> list[np.ndarray]:
    """Notes per source from the frame roll ``(S, 88, T)``, split where the onsets ``(S, 88, T)`` say a note repeats."""
    return [
        decode_notes(roll[s], frame_rate, decoding, onset_probabilities=onsets[s], onset_threshold=ONSET_THRESHOLD,
                     require_onset=require_onset)
        for s in range(roll.shape[0])
    ]


@hookimpl
def mstt_register_heads(register) -> None:
    """Register the onset head."""
    register(
        "onset",
        OnsetHead,
        output="onset",
        loss="onset_bce",
        activation=torch.sigmoid,
        decode=decode_with_onsets,
        options=OnsetHeadOptions,
        frame_local=True,
        grid="keys",  # (batch, sources, 88, frames), like the roll it is decoded with
    )


@hookimpl
def mstt_register_losses(register) -> None:
    """Register the onset head's loss."""
    register("onset_bce", OnsetLoss, options=OnsetLossOptions)
