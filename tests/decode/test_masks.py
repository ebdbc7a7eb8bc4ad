"""Masks -> stems, and pairing estimates with references by permutation."""

import torch

from mstt.decode import apply_permutation, best_permutation, masks_to_stems, pairwise_si_sdr
from mstt.features.stft import STFT


def _sources(batch: int = 2, n_sources: int = 3, samples: int = 8000) -> torch.Tensor:
    """Sines of different pitch plus a little noise: (batch, sources, samples)."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(samples) / 8000
    freqs = torch.tensor([220.0, 550.0, 1300.0, 2900.0])[:n_sources]
    tones = torch.sin(2 * torch.pi * freqs[:, None] * t)
    return tones.expand(batch, -1, -1) + 0.05 * torch.randn(batch, n_sources, samples, generator=g)


def test_ideal_ratio_masks_reconstruct_sources_and_mixture():
    stft = STFT(n_fft=512, hop_length=128)
    sources = _sources()
    mixture = sources.sum(1)
    spec = stft(mixture)
    magnitudes = stft(sources).abs()
    masks = magnitudes / magnitudes.sum(1, keepdim=True).clamp_min(1e-8)
    stems = masks_to_stems(masks, spec, stft, mixture.shape[-1])
    assert stems.shape == sources.shape
    # Ratio masks sum to one in every bin, so the stems add up to the mixture exactly.
    assert torch.allclose(stems.sum(1), mixture, atol=1e-4)
    # Well-separated tones: each stem is close to its source.
    si_sdr = pairwise_si_sdr(stems, sources).diagonal(dim1=1, dim2=2)
    assert (si_sdr > 15).all()


def test_masks_to_stems_rejects_mismatched_shapes():
    stft = STFT(n_fft=256, hop_length=64)
    spec = stft(torch.randn(1, 1000))
    bad = torch.ones(1, 2, spec.shape[1] - 1, spec.shape[2])
    try:
        masks_to_stems(bad, spec, stft, 1000)
    except ValueError as exc:
        assert "do not match" in str(exc)
    else:
        raise AssertionError("mismatched masks were accepted")


def test_best_permutation_recovers_shuffled_order():
    references = _sources(batch=3, n_sources=4)
    orders = torch.tensor([[2, 0, 3, 1], [0, 1, 2, 3], [3, 2, 1, 0]])
    estimates = torch.stack([references[b, orders[b]] for b in range(3)])
    estimates = estimates + 0.1 * torch.randn(estimates.shape, generator=torch.Generator().manual_seed(1))
    perm = best_permutation(estimates, references)
    assert perm.dtype == torch.int64 and perm.shape == (3, 4)
    # estimates[b, perm[b, j]] must be the estimate of reference j.
    assert torch.equal(orders[torch.arange(3)[:, None], perm], torch.arange(4).expand(3, 4))
    aligned = apply_permutation(estimates, perm)
    assert torch.allclose(aligned, references, atol=0.5)
    assert (pairwise_si_sdr(aligned, references).diagonal(dim1=1, dim2=2) > 10).all()


def test_apply_permutation_reorders_trailing_dimensions():
    x = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    perm = torch.tensor([[1, 2, 0], [0, 2, 1]])
    out = apply_permutation(x, perm)
    assert torch.equal(out[0], x[0, [1, 2, 0]]) and torch.equal(out[1], x[1, [0, 2, 1]])


def test_best_permutation_survives_a_silent_reference():
    references = _sources(batch=1, n_sources=3)
    references[0, 1] = 0
    estimates = references[:, [2, 1, 0]] + 0.01
    perm = best_permutation(estimates, references)
    assert sorted(perm[0].tolist()) == [0, 1, 2]
    assert perm[0, 0] == 2 and perm[0, 2] == 0
