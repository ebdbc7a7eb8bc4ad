"""Property-based: any recording through ``mstt.load(...).separate`` gives stems of its length or one MsttError.

Recordings of 0 samples to 3 s, 1-8 channels, 8-192 kHz, int16/int32/float32/float64, with
NaN/Inf, silence, DC, clipping (tests/fuzz_audio.py). The property: either a result of the
documented shape (one stem per source of the input's length at the input's rate, rolls on the
model's frame grid, notes) or an MsttError naming the input ("waveform"), and a refusal only
for a reason the recording really has (no samples, NaN/Inf, silent after the downmix).
"""

from __future__ import annotations

import warnings

import numpy as np
import pretty_midi
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mstt
from mstt.errors import MsttError
from mstt.inference import SILENT_PEAK
from tests.fuzz_audio import Recording, examples, recordings
from tests.test_inference import make_checkpoint

EXAMPLES = examples(200)  # drawn recordings per run (plus the explicit @example cases)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def separator(tmp_path_factory):
    """One tiny 8 kHz Cerberus (piano, guitar) for every example."""
    return mstt.load(make_checkpoint(tmp_path_factory.mktemp("fuzz") / "tiny.pt"), device="cpu")


def time_axis_length(x: np.ndarray) -> int:
    """Samples of an input as documented: (samples,), or the longer axis of a 2-D array is time."""
    return len(x) if x.ndim == 1 else max(x.shape) if x.size else 0


def mono_of(x: np.ndarray) -> np.ndarray:
    """float32 mono downmix, the longer axis taken as time."""
    x = x.astype(np.float64)
    if x.ndim == 1:
        return x.astype(np.float32)
    if x.shape[0] > x.shape[1]:
        x = x.T
    return x.mean(axis=0).astype(np.float32) if x.size else np.zeros(0, np.float32)


def rec(x: np.ndarray, rate: int, layout: str = "mono") -> Recording:
    """An explicit example (the regressions found by fuzzing)."""
    channels = 1 if x.ndim == 1 else (x.shape[0] if layout == "channels_first" else x.shape[1])
    return Recording(x, rate, time_axis_length(x), channels, layout, "explicit", None)


@FUZZ
@given(recording=recordings(),
       chunk=st.sampled_from([(10.0, 1.0), (0.5, 0.1), (0.05, 0.0), (0.3, 0.3)]),
       as_tensor=st.booleans())
# A zero-length multichannel array was refused as "NaN or infinite" (the mean of an empty axis).
@example(recording=rec(np.zeros((2, 0), np.float32), 44100, "channels_first"), chunk=(10.0, 1.0), as_tensor=False)
@example(recording=rec(np.zeros((0, 2), np.int16), 44100, "samples_first"), chunk=(10.0, 1.0), as_tensor=False)
# Fewer samples than channels: the longer axis is time (as_mono's documented rule).
@example(recording=rec(np.ones((8, 3), np.float32), 8000, "channels_first"), chunk=(10.0, 1.0), as_tensor=False)
@example(recording=rec(np.full(1, 0.5, np.float64), 192000), chunk=(0.05, 0.0), as_tensor=True)
def test_separate_any_recording(separator, recording: Recording, chunk: tuple[float, float], as_tensor: bool):
    x = recording.x
    given_x = torch.from_numpy(x) if as_tensor else x
    samples = time_axis_length(x)
    mono = mono_of(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's "mean of empty slice" and friends
        try:
            result = separator.separate(given_x, recording.rate, chunk_seconds=chunk[0], overlap_seconds=chunk[1])
        except MsttError as exc:
            message = str(exc)
            assert "waveform" in message and "\n" not in message, message
            if "zero-length" in message:
                assert samples == 0
            elif "NaN or infinite" in message:
                assert samples and not np.isfinite(mono).all()
            elif "silent" in message:
                assert samples and np.isfinite(mono).all() and np.abs(mono).max() < SILENT_PEAK
            else:
                raise AssertionError(f"unexpected refusal: {message}") from None
            return
    assert samples > 0 and np.isfinite(mono).all() and np.abs(mono).max() >= SILENT_PEAK, "should have been refused"
    assert list(result.stems) == separator.sources
    for name, stem in result.stems.items():
        assert stem.shape == (samples,) and stem.dtype == np.float32, (name, stem.shape)
        assert np.isfinite(stem).all(), name
    frames = 1 + -(-samples * separator.sample_rate // recording.rate) // separator.hop
    assert list(result.rolls) == separator.sources
    assert all(r.shape == (88, frames) and np.isfinite(r).all() for r in result.rolls.values())
    assert isinstance(result.notes, pretty_midi.PrettyMIDI)
    assert result.sample_rate == recording.rate
    assert (result.messages[:1] == [f"downmixed {min(x.shape)} channels to mono"]) == (x.ndim == 2 and min(x.shape) > 1)


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate=st.one_of(st.integers(-2**63, 0), st.floats(allow_nan=True), st.text(max_size=3), st.none()))
def test_separate_refuses_a_bad_sample_rate_by_name(separator, rate):
    with pytest.raises(MsttError, match="sample_rate"):
        separator.separate(np.ones(100, np.float32), rate)
