"""Deep clustering affinity loss in the efficient low-rank form, with weighted bins."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from mstt.features.targets import Targets


@dataclass
class DeepClusteringLossOptions:
    """How bins are weighted: by mixture magnitude (the paper), its square root, or equally."""

    weighting: str = "magnitude"  # magnitude | sqrt | none
    silence_db: float = -40.0  # bins this far below the loudest bin of the example get weight 0


def bin_weights(mixture_mag: torch.Tensor, weighting: str = "magnitude", silence_db: float = -40.0) -> torch.Tensor:
    """Per-bin weights ``(batch, freq, frames)``; silent bins are 0 so they do not pull embeddings."""
    peak = mixture_mag.amax(dim=(-2, -1), keepdim=True)
    active = mixture_mag > peak * (10.0 ** (silence_db / 20.0))
    if weighting == "magnitude":
        weights = mixture_mag
    elif weighting == "sqrt":
        weights = mixture_mag.sqrt()
    elif weighting == "none":
        weights = torch.ones_like(mixture_mag)
    else:
        raise ValueError(f"weighting must be magnitude, sqrt or none, not '{weighting}'")
    return weights * active


def deep_clustering_loss(
    embedding: torch.Tensor, assignment: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted affinity loss, mean over the batch.

    ``embedding`` V ``(batch, bins, dim)``, ``assignment`` Y one-hot ``(batch, bins, sources)``,
    ``weights`` w ``(batch, bins)``. Returns
    ``sum_ij w_i w_j (v_i.v_j - y_i.y_j)^2 / (sum_i w_i)^2``, computed as
    ``|V'W V|^2 - 2|V'W Y|^2 + |Y'W Y|^2`` so memory is O(bins * dim), not O(bins^2).
    """
    w = weights.unsqueeze(-1)
    vw = embedding * w
    yw = assignment * w
    vv = torch.einsum("bnd,bne->bde", vw, embedding)
    vy = torch.einsum("bnd,bns->bds", vw, assignment)
    yy = torch.einsum("bns,bnt->bst", yw, assignment)
    cost = vv.pow(2).sum((1, 2)) - 2 * vy.pow(2).sum((1, 2)) + yy.pow(2).sum((1, 2))
    # Normalising by (sum w)^2 makes it an average over pairs of bins, comparable across crops.
    return (cost / weights.sum(-1).pow(2).clamp_min(1e-8)).mean()


class DeepClusteringLoss:
    """Loss for the ``dc`` head: embedding ``(batch, freq, frames, dim)`` vs dominant source."""

    def __init__(self, options: DeepClusteringLossOptions | None = None) -> None:
        self.options = options or DeepClusteringLossOptions()

    def __call__(self, embedding: torch.Tensor, targets: Targets) -> torch.Tensor:
        """Scalar loss."""
        batch, n_freq, frames, dim = embedding.shape
        n_sources = targets.source_spec.shape[1]
        dominant = targets.dominant_source()  # (batch, freq, frames)
        weights = bin_weights(targets.mixture_mag, self.options.weighting, self.options.silence_db)
        # The loss sums over bins, so their order is free: follow the embedding's memory layout
        # (the dc head's is frame-major) and permute the small tensors rather than copy it.
        if embedding.transpose(1, 2).is_contiguous():
            embedding, dominant, weights = embedding.transpose(1, 2), dominant.transpose(1, 2), weights.transpose(1, 2)
        assignment = F.one_hot(dominant.reshape(batch, -1), n_sources).to(embedding.dtype)
        return deep_clustering_loss(
            embedding.reshape(batch, n_freq * frames, dim),
            assignment,
            weights.reshape(batch, n_freq * frames).to(embedding.dtype),
        )
