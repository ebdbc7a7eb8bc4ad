"""Model outputs -> estimates (stems, masks, roll probabilities), long mixtures in fixed chunks.

Every model kind goes through :func:`stems_from_outputs`, which reads stems from the output whose
head registered how it becomes stems (:mod:`mstt.nn.outputs`), the first present of:

- ``waveform`` ``(batch, sources, samples)``: a whole-waveform separator's ``stems`` (a model
  whose forward returns a tensor is wrapped as ``{"stems": tensor}``); used as is.
- ``mask`` ``(batch, sources, freq, frames)``: mask inference; masks applied to the mixture
  spectrogram and inverted with the mixture phase. Models with both MI and DC heads use this.
- ``cluster`` ``(batch, freq, frames, dim)``: deep clustering only; k-means on the embeddings
  gives binary masks in an arbitrary order.

Outputs registered on the roll's grid (``grid="keys"``) are stitched over chunks; the one
registered ``notes="roll"`` is the roll notes are read from.

Estimates whose order is arbitrary (deep clustering, or a model with ``permutation_invariant =
True``) are paired with the references by the permutation of best summed SI-SDR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from mstt.decode import apply_permutation, best_permutation, embeddings_to_masks, masks_to_stems
from mstt.nn.outputs import CLUSTER, KEYS, MASK, ROLL, WAVEFORM, OutputRole, output_roles, stems_output
from mstt.nn.separator import OUTPUT as SEPARATOR_OUTPUT


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
        return {SEPARATOR_OUTPUT: outputs}
    activated: Callable[[dict], dict] | None = getattr(model, "activated", None)
    return activated(outputs) if activated is not None else dict(outputs)


def stems_from_outputs(
    model: nn.Module,
    outputs: dict[str, torch.Tensor],
    mixture: torch.Tensor,
    references: torch.Tensor | None = None,
    roles: dict[str, OutputRole] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Activated outputs of mixture ``(batch, samples)`` -> (stems ``(batch, S, samples)``, masks ``(batch, S, F, T)``).

    Both are None when the model separates nothing (transcription only). ``references``
    ``(batch, S, samples)``, when given, orders estimates of arbitrary order (see module doc).
    ``roles`` is :func:`mstt.nn.outputs.output_roles` of the model (looked up when not given).
    """
    found = stems_output(roles or output_roles(model), outputs)
    if found is None:
        return None, None
    name, how = found
    masks = None
    if how == WAVEFORM:
        stems = outputs[name]
    else:
        if how == MASK:
            masks = outputs[name]
        else:
            masks = embeddings_to_masks(outputs[name].float(), len(model.sources), outputs["magnitude"])
        stems = masks_to_stems(masks, outputs["spec"], model.front_end.stft, mixture.shape[-1])
    if stems_unordered(model, how) and references is not None:
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


def stems_unordered(model: nn.Module, how: str) -> bool:
    """Whether stems read ``how`` (:data:`mstt.nn.outputs.STEMS_ORDER`) come in no fixed source order."""
    return how == CLUSTER or (how == WAVEFORM and bool(getattr(model, "permutation_invariant", False)))


def is_frame_output(name: str, value: torch.Tensor | None = None, roles: dict[str, OutputRole] | None = None) -> bool:
    """Whether output ``name`` is registered on the roll's grid ``(batch, sources, 88, frames)``.

    ``value`` is not needed (the head's registration says it); ``roles`` as in :func:`stems_from_outputs`.
    """
    role = (roles or output_roles()).get(name)
    return role is not None and role.grid == KEYS


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
    roles = output_roles(model)
    for k, (a, b) in enumerate(bounds):
        last = k == len(bounds) - 1
        piece = mixture[:, a:b]
        outputs = model_outputs(model, piece)
        refs = references[..., a:b] if references is not None else None
        piece_stems, piece_masks = stems_from_outputs(model, outputs, piece, refs, roles)
        if piece_stems is not None:
            stems.append(piece_stems)
        n = None if last else (b - a) // hop_length
        for name, value in outputs.items():
            if is_frame_output(name, value, roles):
                frames.setdefault(name, []).append(value[..., :n].float())
        if kept < keep_frames:
            take = min(keep_frames - kept, (b - a) // hop_length + (1 if last else 0))
            if piece_masks is not None:
                masks.append(piece_masks[..., :take].float())
            if "magnitude" in outputs:
                mags.append(outputs["magnitude"][..., :take].float())
            kept += take
    stitched = {name: torch.cat(parts, dim=-1) for name, parts in frames.items()}
    roll = next((name for name in stitched if roles[name].notes == ROLL), None)
    return Estimates(
        stems=torch.cat(stems, dim=-1) if stems else None,
        roll=stitched.pop(roll) if roll is not None else None,
        extra=stitched,
        masks=torch.cat(masks, dim=-1) if masks else None,
        magnitude=torch.cat(mags, dim=-1) if mags else None,
    )
