"""Loss correctness: DC efficient form = naive affinity form, MI oracle = 0, TR descends."""

from __future__ import annotations

import pytest
import torch
from asteroid.losses import deep_clustering_loss as asteroid_dc_loss
from torch.nn import functional as F

from mstt.features import STFT, make_targets
from mstt.losses import (
    DeepClusteringLoss,
    MaskInferenceLoss,
    TranscriptionLoss,
    deep_clustering_loss,
    mask_inference_loss,
    transcription_loss,
)
from mstt.losses.deep_clustering import DeepClusteringLossOptions, bin_weights
from mstt.losses.mask_inference import MaskInferenceLossOptions
from mstt.losses.transcription import TranscriptionLossOptions


def naive_dc(v: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum_ij w_i w_j (v_i.v_j - y_i.y_j)^2 / (sum w)^2 with the full (bins x bins) affinities."""
    losses = []
    for vb, yb, wb in zip(v, y, w):
        diff = vb @ vb.T - yb @ yb.T
        losses.append((wb[:, None] * wb[None, :] * diff.pow(2)).sum() / wb.sum().pow(2))
    return torch.stack(losses).mean()


def random_dc_inputs(batch=2, bins=30, dim=5, sources=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = F.normalize(torch.randn(batch, bins, dim, generator=g, dtype=torch.float64), dim=-1)
    y = F.one_hot(torch.randint(0, sources, (batch, bins), generator=g), sources).double()
    w = torch.rand(batch, bins, generator=g, dtype=torch.float64)
    return v, y, w


def test_efficient_dc_equals_naive_affinity_formula():
    v, y, w = random_dc_inputs()
    torch.testing.assert_close(deep_clustering_loss(v, y, w), naive_dc(v, y, w))


def test_dc_ignores_zero_weight_bins():
    v, y, w = random_dc_inputs()
    w[:, :10] = 0
    v2 = v.clone()
    v2[:, :10] = F.normalize(torch.randn_like(v2[:, :10]), dim=-1)
    torch.testing.assert_close(deep_clustering_loss(v, y, w), deep_clustering_loss(v2, y, w))


def test_dc_is_zero_for_oracle_embeddings():
    _, y, w = random_dc_inputs(dim=3, sources=3)
    assert deep_clustering_loss(y, y, w).abs() < 1e-12


def test_dc_relation_to_asteroid():
    """Where we differ from asteroid's deep_clustering_loss, and why.

    1. asteroid divides by the number of active bins N, we by (sum of weights)^2 = N^2 for
       binary weights: ours is an average over *pairs* of bins, so its scale does not grow
       with crop length. With binary weights, ours * N equals asteroid's.
    2. asteroid has no magnitude weighting (only a binary VAD mask); ours weights bins by the
       mixture magnitude, as the paper does.
    3. asteroid counts sources as ``len(tgt.unique())`` over the batch, so a batch in which a
       middle source is never dominant indexes out of range; we take the count from the recipe.
    """
    batch, n_freq, frames, dim = 2, 6, 5, 4
    g = torch.Generator().manual_seed(1)
    v = F.normalize(torch.randn(batch, n_freq * frames, dim, generator=g), dim=-1)
    index = torch.randint(0, 3, (batch, n_freq, frames), generator=g)
    index[0, 0, 0], index[0, 0, 1], index[0, 0, 2] = 0, 1, 2  # every source present
    mask = (torch.rand(batch, n_freq, frames, generator=g) > 0.3).float()
    y = F.one_hot(index.view(batch, -1), 3).float()
    ours = torch.stack([deep_clustering_loss(v[i : i + 1], y[i : i + 1], mask.view(batch, -1)[i : i + 1]) for i in range(batch)])
    theirs = asteroid_dc_loss(v, index, binary_mask=mask)
    torch.testing.assert_close(ours * mask.view(batch, -1).sum(-1), theirs, rtol=1e-4, atol=1e-5)

    missing_middle = torch.where(index == 1, torch.zeros_like(index), index)
    with pytest.raises((RuntimeError, IndexError)):
        asteroid_dc_loss(v, missing_middle)
    y3 = F.one_hot(missing_middle.view(batch, -1), 3).float()
    assert torch.isfinite(deep_clustering_loss(v, y3, torch.ones(batch, n_freq * frames)))


def test_bin_weights_zero_silent_bins():
    mag = torch.tensor([[[1.0, 0.5, 1e-4]]])
    assert bin_weights(mag, "magnitude", -40.0).tolist() == [[[1.0, 0.5, 0.0]]]
    assert bin_weights(mag, "none", -40.0).tolist() == [[[1.0, 1.0, 0.0]]]


def _targets(sources=2, samples=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(1, sources, samples, generator=g)
    return make_targets(STFT(256, 64), {"mixture": src.sum(1), "sources": src})


def test_dc_loss_object_on_oracle_assignment_is_zero():
    t = _targets()
    oracle = F.one_hot(t.dominant_source(), 2).float()  # (B, F, T, S) as a 2-d embedding
    assert DeepClusteringLoss(DeepClusteringLossOptions())(oracle, t) < 1e-6


def test_dc_loss_is_the_same_for_either_embedding_layout():
    t = _targets()
    batch, n_freq, frames = t.mixture_spec.shape
    v = F.normalize(torch.randn(batch, frames, n_freq, 4, generator=torch.Generator().manual_seed(1)), dim=-1)
    frame_major = v.transpose(1, 2)  # (B, F, T, D) view of frame-major memory, as the dc head returns
    loss = DeepClusteringLoss(DeepClusteringLossOptions())
    torch.testing.assert_close(loss(frame_major, t), loss(frame_major.contiguous(), t))


def test_dominant_source_is_the_loudest_source_per_bin():
    t = _targets(sources=3)
    mags = t.source_mag
    dominant = t.dominant_source()
    assert dominant.shape == mags[:, 0].shape
    torch.testing.assert_close(mags.gather(1, dominant.unsqueeze(1)).squeeze(1), mags.amax(1))


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_mask_inference_is_zero_for_oracle_masks(norm):
    t = _targets(sources=3)
    oracle = t.phase_sensitive() / t.mixture_mag.unsqueeze(1).clamp_min(1e-8)
    loss = MaskInferenceLoss(MaskInferenceLossOptions(norm=norm))(oracle, t)
    assert loss < 1e-6
    assert MaskInferenceLoss(MaskInferenceLossOptions(norm=norm))(torch.full_like(oracle, 0.5), t) > 1e-2


def test_mask_inference_magnitude_target():
    t = _targets()
    oracle = t.source_mag / t.mixture_mag.unsqueeze(1).clamp_min(1e-8)
    assert MaskInferenceLoss(MaskInferenceLossOptions(target="magnitude"))(oracle, t) < 1e-5
    assert mask_inference_loss(oracle, t.mixture_mag, t.source_mag, "l2") < 1e-8


@pytest.mark.parametrize("kind", ["bce", "l2"])
def test_transcription_loss_decreases_toward_the_reference(kind):
    g = torch.Generator().manual_seed(0)
    reference = (torch.rand(1, 2, 88, 20, generator=g) > 0.9).float()
    logits = torch.zeros_like(reference, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.5)
    first = transcription_loss(logits, reference, kind).item()
    for _ in range(50):
        optimiser.zero_grad()
        loss = transcription_loss(logits, reference, kind)
        loss.backward()
        optimiser.step()
    assert loss.item() < first / 10
    assert ((logits > 0).float() == reference).all()


def test_transcription_loss_without_rolls_is_a_clear_error():
    t = _targets()
    with pytest.raises(Exception, match="needs 'roll' targets"):
        TranscriptionLoss(TranscriptionLossOptions())(torch.zeros(1, 2, 88, 3), t)
