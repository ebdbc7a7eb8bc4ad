"""Property-based: any recording written by soundfile, read back by ``read_audio``, gives its mono samples or one AudioError.

The recording (tests/fuzz_audio.py) is written in a format libsndfile allows for it (WAV of
every subtype, FLAC, AIFF, OGG); a combination the format refuses (FLAC above 655 kHz, ...)
is not a test case. The property: float32 ``(resampled_length(frames, rate, target),)`` of
finite samples, or an AudioError (an MsttError) naming the file (``folder/name``), and a
refusal only for a reason the file really has.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ is not a package

from mstt.data.audio import AudioError, read_audio, resampled_length  # noqa: E402
from mstt.errors import MsttError  # noqa: E402
from tests.fuzz_audio import RATES, Recording, examples, recordings  # noqa: E402

EXAMPLES = examples(60)
FORMATS = [("wav", "PCM_16"), ("wav", "PCM_24"), ("wav", "PCM_32"), ("wav", "FLOAT"), ("wav", "DOUBLE"),
           ("wav", "PCM_U8"), ("flac", "PCM_16"), ("flac", "PCM_24"), ("aiff", "PCM_16"), ("ogg", "VORBIS")]


def test_audio_error_is_an_mstt_error():
    """The CLI prints an MsttError as one line; an AudioError that escapes an adapter must be one too."""
    assert issubclass(AudioError, MsttError)


def write(folder: Path, recording: Recording, suffix: str, subtype: str) -> Path | None:
    """The recording as a file, or None when the format does not allow it (rate, channels)."""
    path = folder / "Track00001" / f"S00.{suffix}"
    path.parent.mkdir()
    x = recording.x if recording.layout != "channels_first" else recording.x.T
    try:
        sf.write(str(path), x, recording.rate, subtype=subtype)
    except (sf.LibsndfileError, ValueError, RuntimeError, AssertionError):  # soundfile asserts on some FLAC writes of NaN
        return None
    return path


@settings(max_examples=EXAMPLES, deadline=None)
@given(recording=recordings(max_seconds=2.0), fmt=st.sampled_from(FORMATS), target=RATES)
# A float WAV with NaN samples was read as NaN audio (and quantised to garbage by the cache).
@example(recording=Recording(np.array([0.1, np.nan, 0.2], np.float32), 16000, 3, 1, "mono", "explicit", "nan"),
         fmt=("wav", "FLOAT"), target=16000)
# A header-only file (0 frames) at a rate other than the target.
@example(recording=Recording(np.zeros((0, 2), np.int16), 44100, 0, 2, "samples_first", "explicit", None),
         fmt=("wav", "PCM_16"), target=16000)
def test_read_audio_any_recording(recording: Recording, fmt: tuple[str, str], target: int):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), recording, *fmt)
        assume(path is not None)
        try:  # libsndfile writes some files it cannot read back (e.g. FLAC at some rates): read_audio must refuse them
            info, stored = sf.info(str(path)), sf.read(str(path), dtype="float64", always_2d=True)[0]
        except sf.LibsndfileError:
            info = stored = None
        try:
            audio = read_audio(path, target)
        except AudioError as exc:
            message = str(exc)
            assert "Track00001/S00." in message and "\n" not in message, message
            assert info is None or info.frames == 0 or not np.isfinite(stored).all(), f"refused a good file: {message}"
            return
    assert info is not None, "read a file libsndfile cannot open"
    assert info.frames > 0 or len(audio) == 0
    assert np.isfinite(stored).all(), "NaN or Inf in the file, read without a word"
    assert audio.dtype == np.float32 and audio.shape == (resampled_length(info.frames, info.samplerate, target),)
    assert np.isfinite(audio).all()
