"""STFT front end: reconstruction, frame grid, feature shapes."""

from __future__ import annotations

import pytest
import torch

from mstt.features import STFT, FrontEnd, make_targets


@pytest.mark.parametrize("n_fft, hop", [(1024, 256), (512, 128), (256, 64)])
def test_istft_reconstructs_within_1e4(n_fft, hop):
    stft = STFT(n_fft, hop)
    wave = torch.randn(2, 3, 16000) * 0.3
    spec = stft(wave)
    assert spec.shape == (2, 3, n_fft // 2 + 1, stft.frames(16000))
    assert (stft.inverse(spec, 16000) - wave).abs().max() < 1e-4


def test_frames_follow_the_centred_grid():
    stft = STFT(1024, 256)
    assert stft.frames(32000) == 1 + 32000 // 256 == stft(torch.zeros(32000)).shape[-1]


@pytest.mark.parametrize("compression", ["none", "log", "sqrt"])
@pytest.mark.parametrize("normalization", ["none", "utterance", "frequency"])
def test_front_end_features_are_frames_by_freq(compression, normalization):
    front = FrontEnd(256, 64, compression=compression, normalization=normalization)
    spec, mag, feats = front(torch.randn(2, 4000))
    assert spec.is_complex() and mag.shape == spec.shape
    assert feats.shape == (2, spec.shape[-1], 129)
    assert torch.isfinite(feats).all()


def test_unknown_window_and_compression_are_refused():
    with pytest.raises(ValueError, match="unknown window"):
        STFT(256, 64, window="kaiser")
    with pytest.raises(ValueError, match="unknown compression"):
        FrontEnd(256, 64, compression="cube")


def test_phase_sensitive_target_is_truncated_to_the_mixture():
    stft = STFT(256, 64)
    sources = torch.randn(1, 2, 4000)
    targets = make_targets(stft, {"mixture": sources.sum(1), "sources": sources})
    psa = targets.phase_sensitive()
    assert psa.min() >= 0
    assert (psa <= targets.mixture_mag.unsqueeze(1) + 1e-6).all()
    # Untruncated PSA targets sum to the mixture magnitude (projections onto the mixture phase).
    full = targets.phase_sensitive(truncate=False).sum(1)
    torch.testing.assert_close(full, targets.mixture_mag, atol=1e-3, rtol=1e-3)
