"""Built-in metrics: separation values, transcription levels and conventions, registration."""

import math
import warnings

import numpy as np
import pytest
import torch

from mstt.metrics import (
    BssEvalOptions,
    SdrOptions,
    SiSdrOptions,
    TranscriptionOptions,
    bss_eval_metric,
    sdr_metric,
    si_sdr_metric,
    transcription_metric,
)

FPS = 62.5


def _signals(n: int = 3, samples: int = 4000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, samples, generator=g)


def _si_sdr_formula(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Le Roux et al. 2019, zero-mean: project the estimate on the reference."""
    estimate, reference = estimate - estimate.mean(), reference - reference.mean()
    target = (estimate @ reference) / (reference @ reference) * reference
    return 10 * math.log10((target @ target) / ((estimate - target) @ (estimate - target)))


def test_si_sdr_of_a_signal_with_itself_is_large_and_of_noise_is_low():
    fn = si_sdr_metric(SiSdrOptions())
    reference = _signals()
    assert (fn(reference, reference)["si_sdr"] > 100).all()
    assert (fn(0.5 * reference, reference)["si_sdr"] > 100).all()  # scale-invariant
    noise = _signals(seed=1)
    assert (fn(noise, reference)["si_sdr"] < -10).all()


def test_si_sdr_matches_the_formula():
    reference = _signals()
    estimate = 0.7 * reference + 0.3 * _signals(seed=2) + 0.1
    values = si_sdr_metric(SiSdrOptions())(estimate, reference)["si_sdr"]
    assert values.shape == (3,)
    expected = [_si_sdr_formula(estimate[i].double().numpy(), reference[i].double().numpy()) for i in range(3)]
    np.testing.assert_allclose(values.numpy(), expected, atol=1e-6)


def test_separation_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(n, samples\)"):
        si_sdr_metric(SiSdrOptions())(_signals(), _signals()[:2])


def test_sdr_forgives_a_short_filter_that_si_sdr_punishes_and_matches_mir_eval():
    import mir_eval

    reference = _signals(n=2, samples=8000)
    kernel = torch.tensor([[[0.6, 0.3, 0.1]]])
    filtered = torch.nn.functional.conv1d(reference[:, None], kernel, padding=1)[:, 0]
    estimate = filtered + 0.05 * _signals(n=2, samples=8000, seed=3)
    sdr = sdr_metric(SdrOptions())(estimate, reference)["sdr"]
    si_sdr = si_sdr_metric(SiSdrOptions())(estimate, reference)["si_sdr"]
    assert (sdr > 15).all() and (si_sdr < 5).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = mir_eval.separation.bss_eval_sources(
            reference.double().numpy(), estimate.double().numpy(), compute_permutation=False
        )[0]
    np.testing.assert_allclose(sdr.numpy(), expected, atol=1e-3)


def test_bss_eval_gives_sdr_sir_sar_and_nan_for_silent_rows():
    reference = _signals(n=3, samples=8000)
    estimate = reference + 0.2 * reference.roll(1, 0) + 0.05 * _signals(n=3, samples=8000, seed=4)
    reference[1] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mir_eval's deprecation warning must not leak out
        out = bss_eval_metric(BssEvalOptions())(estimate, reference)
    assert set(out) == {"sdr", "sir", "sar"}
    for value in out.values():
        assert value.shape == (3,) and torch.isnan(value[1]) and torch.isfinite(value[[0, 2]]).all()
    assert (out["sdr"][[0, 2]] > 5).all()


def _notes() -> np.ndarray:
    """A few notes, velocity 80, well apart: [onset, offset, pitch, velocity]."""
    return np.array(
        [
            [0.10, 0.60, 60, 80],
            [0.50, 1.00, 64, 80],
            [1.20, 1.50, 67, 80],
            [1.60, 2.40, 48, 80],
        ]
    )


def test_perfect_transcription_scores_one_on_every_level():
    notes = _notes()
    result = transcription_metric(TranscriptionOptions())(notes, notes.copy(), FPS)
    assert set(result) == {"frame", "onset", "onset_offset"}
    for level in result.values():
        assert level == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_onsets_shifted_by_60_ms_score_zero_at_note_level_only():
    reference = _notes()
    estimate = reference.copy()
    estimate[:, :2] += 0.06
    result = transcription_metric(TranscriptionOptions())(reference, estimate, FPS)
    assert result["onset"]["f1"] == 0.0 and result["onset_offset"]["f1"] == 0.0
    # Most frames still overlap.
    assert result["frame"]["f1"] > 0.8
    # Within the 50 ms tolerance the same notes all match.
    estimate[:, :2] -= 0.02
    assert transcription_metric(TranscriptionOptions())(reference, estimate, FPS)["onset"]["f1"] == 1.0


def test_offsets_matter_only_for_onset_offset():
    reference = _notes()
    estimate = reference.copy()
    estimate[:, 1] = estimate[:, 0] + 0.5 * (reference[:, 1] - reference[:, 0])  # half as long
    result = transcription_metric(TranscriptionOptions())(reference, estimate, FPS)
    assert result["onset"]["f1"] == 1.0 and result["onset_offset"]["f1"] == 0.0
    assert result["frame"]["precision"] == 1.0 and result["frame"]["recall"] < 0.7


def test_drums_have_no_onset_offset_and_zero_length_hits_are_accepted():
    hits = np.array([[0.0, 0.0, 36, 100], [0.5, 0.5, 38, 100], [1.0, 1.0, 42, 90]])
    result = transcription_metric(TranscriptionOptions())(hits, hits.copy(), FPS, is_drum=True)
    assert set(result) == {"frame", "onset"}
    assert result["onset"]["f1"] == 1.0 and result["frame"]["f1"] == 1.0


def test_quiet_reference_notes_are_left_out_of_frames_but_not_notes():
    reference = _notes()
    reference[0, 3] = 20  # below velocity 30
    estimate = np.delete(reference, 0, axis=0)
    result = transcription_metric(TranscriptionOptions())(reference, estimate, FPS)
    assert result["frame"]["recall"] == 1.0
    assert result["onset"]["recall"] == 0.75


def test_empty_notes_convention():
    fn = transcription_metric(TranscriptionOptions())
    empty = np.zeros((0, 4))
    both = fn(empty, empty, FPS)
    assert all(math.isnan(v) for level in both.values() for v in level.values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mir_eval's empty-input warnings are not reached
        missed = fn(_notes(), empty, FPS)
        false_alarms = fn(empty, _notes(), FPS)
    for result in (missed, false_alarms):
        assert all(v == 0.0 for level in result.values() for v in level.values())


def test_registry_lists_the_builtin_metrics():
    from mstt.plugins import build_registry

    registry = build_registry(entry_points=False)
    assert {"si_sdr", "sdr", "bss_eval", "transcription"} <= set(registry.names("metrics"))
    assert registry.get("metrics", "sdr").options is SdrOptions
    assert registry.get("metrics", "transcription").info["task"] == "transcription"
    assert registry.get("metrics", "bss_eval").info["task"] == "separation"
    fn = registry.get("metrics", "si_sdr").factory(SiSdrOptions())
    assert fn(_signals(), _signals())["si_sdr"].shape == (3,)
