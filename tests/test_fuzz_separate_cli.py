"""Property-based: ``mstt separate`` on any file writes complete outputs or none, and names a bad file in one line.

The input is a drawn recording (tests/fuzz_audio.py) written as WAV or FLAC, sometimes damaged
afterwards (truncated, bit-flipped, replaced by random bytes). The property: exit 0 with
``OUT/<name>/`` holding one float WAV per stem of the input's frames at its rate and the MIDI
file; or exit 1 with one error line naming the file, no ``OUT/<name>/`` and no partial folder.
Never a traceback, never exit 2 (the checkpoint and options are good).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mstt.cli import main
from tests.fuzz_audio import Recording, examples, recordings
from tests.test_inference import make_checkpoint

EXAMPLES = examples(40)
FORMATS = [("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", "PCM_24")]
DAMAGE = st.one_of(
    st.none(),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=4)),
    st.tuples(st.just("replace"), st.binary(max_size=200)),
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("fuzz-cli") / "tiny.pt")


def write(path: Path, recording: Recording, subtype: str, damage) -> bool:
    x = recording.x if recording.layout != "channels_first" else recording.x.T
    try:
        sf.write(str(path), x, recording.rate, subtype=subtype)
    except (sf.LibsndfileError, ValueError, RuntimeError, AssertionError):  # soundfile asserts on some FLAC writes of NaN
        return False  # the format does not allow it
    if damage is not None:
        data = bytearray(path.read_bytes())
        if damage[0] == "truncate":
            data = data[: int(len(data) * damage[1])]
        elif damage[0] == "flip":
            for where, bit in damage[1] if data else []:
                data[int(where * len(data))] ^= 1 << bit
        else:
            data = bytearray(damage[1])
        path.write_bytes(bytes(data))
    return True


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recording=recordings(max_seconds=1.5, max_channels=4), fmt=st.sampled_from(FORMATS), damage=DAMAGE)
def test_separate_cli_any_file(checkpoint: Path, capsys, recording: Recording, fmt: tuple[str, str], damage):
    with tempfile.TemporaryDirectory() as tmp:
        song, out = Path(tmp) / f"song.{fmt[0]}", Path(tmp) / "out"
        assume(write(song, recording, fmt[1], damage))
        capsys.readouterr()
        code = main(["separate", str(checkpoint), str(song), "--out", str(out), "--outputs", "stems,midi",
                     "--chunk-seconds", "0.5", "--overlap-seconds", "0.1", "--quiet"])
        err = capsys.readouterr().err
        assert not list(out.glob(".*partial*")), "a partial folder was left behind"
        if code == 1:
            lines = [line for line in err.splitlines() if line.startswith("mstt: error:")]
            assert len(lines) == 1 and str(song) in lines[0], err
            assert not (out / "song").exists(), "a failed file left outputs"
            return
        assert code == 0, err
        frames = sf.info(str(song)).frames
        folder = out / "song"
        assert sorted(p.name for p in folder.iterdir()) == ["guitar.wav", "piano.wav", "song.mid"]
        for name in ("piano", "guitar"):
            stem, rate = sf.read(str(folder / f"{name}.wav"), dtype="float32")
            assert rate == sf.info(str(song)).samplerate and stem.shape == (frames,) and np.isfinite(stem).all()
