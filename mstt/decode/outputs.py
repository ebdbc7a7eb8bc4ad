"""Notes from a model's outputs: the one rule that evaluation and separation share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from mstt.decode.notes import NoteDecoding, decode_notes

NoteDecoder = tuple[str, Callable[..., list[np.ndarray]]]


def note_decoder(model: torch.nn.Module) -> NoteDecoder | None:
    """(output name, decode) of the model's first head registered with a ``decode`` function, if any."""
    for spec in getattr(model, "specs", {}).values():
        if getattr(spec, "decode", None) is not None:
            return spec.output, spec.decode
    return None


def notes_from_outputs(
    roll: Any,
    outputs: Mapping[str, Any],
    frame_rate: float,
    decoding: NoteDecoding,
    decoder: NoteDecoder | None = None,
) -> list[np.ndarray]:
    """One example's sigmoid roll ``(sources, 88, frames)`` -> notes ``(n, 4)`` per source.

    ``outputs`` holds the example's other activated frame outputs (``(sources, 88, frames)``
    each); a head that registered ``decode`` (e.g. the onset plugin's) reads the notes from its
    output its own way, otherwise each source's roll is decoded with ``decoding``.
    """
    roll = torch.as_tensor(roll)
    if decoder is not None and decoder[0] in outputs:
        name, decode = decoder
        return decode(roll, torch.as_tensor(outputs[name]), frame_rate, decoding)
    return [decode_notes(roll[s], frame_rate, decoding) for s in range(roll.shape[0])]
