"""Model outputs -> estimates (stems, masks, roll probabilities), long mixtures in fixed chunks.

Every model kind goes through :func:`stems_from_outputs`, which decides how stems are read from
whatever the model produced:

- ``"stems"`` ``(batch, sources, samples)``: a whole-waveform separator (a model whose forward
  returns a tensor is wrapped as ``{"stems": tensor}``); used as is.
- ``"mask"`` ``(batch, sources, freq, frames)``: mask inference; masks applied to the mixture
  spectrogram and inverted with the mixture phase. Models with both MI and DC heads use this.
- ``"embedding"`` ``(batch, freq, frames, dim)``: deep clustering only; k-means on the embeddings
  gives binary masks in an arbitrary order.

Estimates whose order is arbitrary (deep clustering, or a model with ``permutation_invariant =
True``) are paired with the references by the permutation of best summed SI-SDR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from mstt.decode import apply_permutation, best_permutation, embeddings_to_masks, masks_to_stems


@dataclass
class Estimates:
    """What the model estimated for one batch of mixtures (any field None when it has no head for it)."""

    stems: torch.Tensor | None  # (batch, sources, samples)
    roll: torch.Tensor | None  # probabilities (batch, sources, 88, frames)
    extra: dict[str, torch.Tensor]  # other activated frame-grid outputs, e.g. "onset" (batch, sources, 88, frames)
    masks: torch.Tensor | None  # (batch, sources, freq, kept frames): only the first ``keep_frames``
    magnitude: torch.Tensor | None  # mixture magnitude (batch, freq, kept frames)


def model_outputs(model: nn.Module, mixture: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mixture ``(batch, samples)`` -> activated outputs; a bare tensor output counts as ``"stems"``."""
    outputs: Any = model(mixture)
    if isinstance(outputs, torch.Tensor):
        return {"stems": outputs}
    activated: Callable[[dict], dict] | None = getattr(model, "activated", None)
    return activated(outputs) if activated is not None else dict(outputs)


def stems_from_outputs(
    model: nn.Module,
    outputs: dict[str, torch.Tensor],
    mixture: torch.Tensor,
    references: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Activated outputs of mixture ``(batch, samples)`` -> (stems ``(batch, S, samples)``, masks ``(batch, S, F, T)``).

    Both are None when the model separates nothing (transcription only). ``references``
    ``(batch, S, samples)``, when given, orders estimates of arbitrary order (see module doc).
    """
    length = mixture.shape[-1]
    masks = None
    if "stems" in outputs:
        stems = outputs["stems"]
        unordered = bool(getattr(model, "permutation_invariant", False))
    elif "mask" in outputs:
        masks = outputs["mask"]
        stems = masks_to_stems(masks, outputs["spec"], model.front_end.stft, length)
        unordered = False
    elif "embedding" in outputs:
        n_sources = len(model.sources)
        masks = embeddings_to_masks(outputs["embedding"].float(), n_sources, outputs["magnitude"])
        stems = masks_to_stems(masks, outputs["spec"], model.front_end.stft, length)
        unordered = True
    else:
        return None, None
    if unordered and references is not None:
        perm = best_permutation(stems, references)
        stems = apply_permutation(stems, perm)
        masks = apply_permutation(masks, perm) if masks is not None else None
    return stems, masks


def chunk_bounds(samples: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` of chunks ``chunk`` long starting every ``chunk - overlap``; a short tail joins the chunk before."""
    bounds, start = [], 0
    while True:
        end = start + chunk
        if end >= samples:
            bounds.append((start, samples))
            break
        bounds.append((start, end))
        start += chunk - overlap
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < chunk // 2:
        # A tail much shorter than a chunk would be separated with little context.
        bounds.pop()
        bounds[-1] = (bounds[-1][0], samples)
    return bounds




def is_frame_output(name: str, value: torch.Tensor) -> bool:
    """Whether an output is on the roll's grid ``(batch, sources, 88, frames)``: the roll and relatives ("onset")."""
    return name not in ("spec", "magnitude", "mask", "embedding", "stems") and value.dim() == 4 and value.shape[2] == 88

def infer(
    model: nn.Module,
    mixture: torch.Tensor,
    references: torch.Tensor | None,
    hop_length: int,
    chunk_samples: int,
    keep_frames: int = 0,
) -> Estimates:
    """Run ``model`` on mixture ``(batch, samples)`` chunk by chunk and stitch the estimates.

    Chunks are multiples of ``hop_length`` long, so frame ``i`` of chunk ``k`` is frame
    ``start_k / hop + i`` of the whole; each chunk but the last drops its final frame, which the
    next chunk's first frame covers. Peak memory is that of one chunk plus the outputs (stems,
    rolls) themselves. Masks and the mixture magnitude are kept for the first ``keep_frames``
    frames only (for reports).
    """
    samples = mixture.shape[-1]
    chunk = max(hop_length, chunk_samples // hop_length * hop_length)
    bounds = chunk_bounds(samples, chunk, 0)
    stems, masks, mags = [], [], []
    frames: dict[str, list[torch.Tensor]] = {}
    kept = 0
    for k, (a, b) in enumerate(bounds):
        last = k == len(bounds) - 1
        piece = mixture[:, a:b]
        outputs = model_outputs(model, piece)
        refs = references[..., a:b] if references is not None else None
        piece_stems, piece_masks = stems_from_outputs(model, outputs, piece, refs)
        if piece_stems is not None:
            stems.append(piece_stems)
        n = None if last else (b - a) // hop_length
        for name, value in outputs.items():
            if is_frame_output(name, value):
                frames.setdefault(name, []).append(value[..., :n].float())
        if kept < keep_frames:
            take = min(keep_frames - kept, (b - a) // hop_length + (1 if last else 0))
            if piece_masks is not None:
                masks.append(piece_masks[..., :take].float())
            if "magnitude" in outputs:
                mags.append(outputs["magnitude"][..., :take].float())
            kept += take
    stitched = {name: torch.cat(parts, dim=-1) for name, parts in frames.items()}
    return Estimates(
        stems=torch.cat(stems, dim=-1) if stems else None,
        roll=stitched.pop("roll", None),
        extra=stitched,
        masks=torch.cat(masks, dim=-1) if masks else None,
        magnitude=torch.cat(mags, dim=-1) if mags else None,
    )
