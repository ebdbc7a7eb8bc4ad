"""Piano roll <-> notes <-> MIDI."""

import numpy as np
import pretty_midi
import pytest
import torch

from mstt.decode import NoteDecoding, decode_notes, midi_to_notes, notes_to_midi, notes_to_onset_roll, notes_to_roll, roll_to_notes

FPS = 62.5


def _random_roll(frames: int = 200, seed: int = 0, min_run: int = 2) -> np.ndarray:
    """A binary (88, frames) roll whose runs of ones are all at least ``min_run`` long."""
    rng = np.random.default_rng(seed)
    roll = np.zeros((88, frames), dtype=np.float32)
    for key in rng.choice(88, size=30, replace=False):
        t = int(rng.integers(0, 10))
        length = int(rng.integers(min_run, 15))
        while t + length <= frames:  # a run cut by the roll's end could be shorter than min_run
            roll[key, t : t + length] = 1.0
            t += length + int(rng.integers(1, 10))
            length = int(rng.integers(min_run, 15))
    return roll


def test_roll_notes_roll_round_trip_is_identity():
    roll = _random_roll()
    notes = roll_to_notes(roll, FPS)
    assert notes.dtype == np.float64 and notes.shape[1] == 4 and len(notes) > 50
    np.testing.assert_array_equal(notes_to_roll(notes, roll.shape[1], FPS), roll)


def test_roll_to_notes_accepts_tensors_and_sorts_by_onset():
    roll = _random_roll(seed=1)
    notes = roll_to_notes(torch.from_numpy(roll), FPS)
    np.testing.assert_array_equal(notes, roll_to_notes(roll, FPS))
    assert np.all(np.diff(notes[:, 0]) >= 0)


def test_note_times_pitch_and_velocity():
    probs = np.zeros((88, 100))
    probs[60 - 21, 10:30] = 0.9  # middle C
    probs[0, 50:53] = 0.5  # A0
    notes = roll_to_notes(probs, FPS)
    np.testing.assert_allclose(notes[0, :3], [10 / FPS, 30 / FPS, 60])
    np.testing.assert_allclose(notes[1, :3], [50 / FPS, 53 / FPS, 21])
    assert notes[0, 3] == round(0.9 * 127) and notes[1, 3] == round(0.5 * 127)
    assert 1 <= notes[:, 3].min() and notes[:, 3].max() <= 127


def test_min_frames_and_threshold():
    probs = np.zeros((88, 50))
    probs[10, 5:6] = 1.0  # one frame: too short for min_frames=2
    probs[20, 5:7] = 1.0  # two frames: kept
    probs[30, 5:20] = 0.3  # below the threshold
    notes = roll_to_notes(probs, FPS, min_frames=2)
    assert notes[:, 2].tolist() == [20 + 21]
    assert len(roll_to_notes(probs, FPS, min_frames=1)) == 2
    assert len(roll_to_notes(probs, FPS, threshold=0.2)) == 2
    assert roll_to_notes(np.zeros((88, 10)), FPS).shape == (0, 4)


def test_onsets_split_a_sustained_run_and_gate_note_starts():
    frames = np.zeros((88, 60))
    onsets = np.zeros((88, 60))
    frames[40, 10:40] = 0.9  # one long run, re-struck at frame 25
    onsets[40, 10] = 0.8
    onsets[40, 25] = 0.8
    frames[50, 5:20] = 0.9  # an onset one frame late still starts the note at the run's start
    onsets[50, 6] = 0.9
    frames[60, 5:20] = 0.9  # a run with no onset at all is not a note
    notes = roll_to_notes(frames, FPS, onset_probabilities=onsets)
    by_key = {int(p): notes[notes[:, 2] == p, :2] * FPS for p in np.unique(notes[:, 2])}
    np.testing.assert_allclose(by_key[40 + 21], [[10, 25], [25, 40]])
    np.testing.assert_allclose(by_key[50 + 21], [[5, 20]])
    assert 60 + 21 not in by_key
    # Without onsets the same roll gives one note per run.
    assert len(roll_to_notes(frames, FPS)) == 3


def test_onset_in_the_middle_of_a_run_drops_the_frames_before_it():
    frames = np.zeros((88, 40))
    onsets = np.zeros((88, 40))
    frames[5, 0:30] = 1.0
    onsets[5, 12:14] = 1.0  # a two-frame onset peak is one onset
    notes = roll_to_notes(frames, FPS, onset_probabilities=onsets)
    np.testing.assert_allclose(notes[:, :2] * FPS, [[12, 30]])


def test_without_require_onset_every_run_starts_a_note_and_onsets_only_split():
    frames = np.zeros((88, 40))
    onsets = np.zeros((88, 40))
    frames[5, 0:30] = 1.0  # no onset at its start, one inside
    onsets[5, 12:14] = 1.0
    frames[9, 3:8] = 1.0  # no onset at all
    notes = roll_to_notes(frames, FPS, onset_probabilities=onsets, require_onset=False)
    by_key = {int(p): notes[notes[:, 2] == p, :2] * FPS for p in np.unique(notes[:, 2])}
    np.testing.assert_allclose(by_key[5 + 21], [[0, 12], [12, 30]])
    np.testing.assert_allclose(by_key[9 + 21], [[3, 8]])
    gated = decode_notes(frames, FPS, NoteDecoding(), onset_probabilities=onsets, require_onset=True)
    np.testing.assert_allclose(gated[:, :2] * FPS, [[12, 30]])


def test_without_require_onset_an_onset_just_after_a_runs_start_is_its_own():
    frame_rate = 62.5  # 16 ms frames: 50 ms is a bit over 3 frames
    frames, onsets = np.zeros((88, 60)), np.zeros((88, 60))
    frames[5, 10:40] = frames[9, 10:40] = 1.0
    onsets[5, 13] = 1.0  # 48 ms after the run starts: the same note, detected late
    onsets[9, 14] = 1.0  # 64 ms after: a repeat
    notes = roll_to_notes(frames, frame_rate, onset_probabilities=onsets, require_onset=False)
    by_key = {int(p): np.round(notes[notes[:, 2] == p, :2] * frame_rate) for p in np.unique(notes[:, 2])}
    np.testing.assert_allclose(by_key[5 + 21], [[10, 40]])
    np.testing.assert_allclose(by_key[9 + 21], [[10, 14], [14, 40]])


def test_notes_to_roll_rounding_range_and_velocity():
    notes = np.array(
        [
            [0.1, 0.1, 60, 100],  # zero length: still one frame
            [0.5, 0.7, 20, 100],  # below A0: dropped
            [0.5, 0.7, 109, 100],  # above C8: dropped
            [1.0, 2.0, 62, 20],  # quiet: dropped when min_velocity=30
            [2.9, 5.0, 64, 90],  # runs past the end of the roll
        ]
    )
    roll = notes_to_roll(notes, 190, FPS)
    assert roll.dtype == np.float32 and roll.shape == (88, 190)
    assert roll[60 - 21].nonzero()[0].tolist() == [round(0.1 * FPS)]
    # 1.0 s is frame 62.5 exactly: rounding goes half up, to frame 63.
    assert roll[62 - 21].nonzero()[0].tolist() == list(range(63, 125))
    assert roll[64 - 21, round(2.9 * FPS) :].all() and roll[64 - 21].sum() == 190 - round(2.9 * FPS)
    # Keys 20 and 109 are off the 88-key roll; only the three other notes mark it.
    assert roll.sum() == 1 + roll[62 - 21].sum() + roll[64 - 21].sum()
    assert notes_to_roll(notes, 190, FPS, min_velocity=30)[62 - 21].sum() == 0
    onset_roll = notes_to_onset_roll(notes, 190, FPS)
    assert onset_roll.sum() == 3
    assert onset_roll[64 - 21, round(2.9 * FPS)] == 1 and onset_roll[62 - 21, 63] == 1
    assert notes_to_onset_roll(notes, 190, FPS, min_velocity=30).sum() == 2


def test_onset_roll_marks_no_onset_for_notes_begun_before_the_roll():
    notes = np.array([[-1.0, 1.0, 60, 100]])
    assert notes_to_onset_roll(notes, 100, FPS).sum() == 0
    assert notes_to_roll(notes, 100, FPS)[60 - 21, : round(FPS)].all()


def test_notes_to_midi_instruments_programs_drums_and_file_round_trip(tmp_path):
    sources = {
        "piano": np.array([[0.0, 0.5, 60, 100], [0.25, 1.0, 64, 80]]),
        "guitar": np.array([[0.5, 1.5, 52, 70]]),
        "drums": np.array([[0.0, 0.1, 36, 120], [0.5, 0.6, 38, 110]]),
        "bass": np.zeros((0, 4)),
    }
    midi = notes_to_midi(sources, programs={"guitar": 27})
    assert [i.name for i in midi.instruments] == list(sources)
    by_name = {i.name: i for i in midi.instruments}
    assert by_name["piano"].program == 0 and not by_name["piano"].is_drum
    assert by_name["guitar"].program == 27
    assert by_name["bass"].program == 33 and by_name["bass"].notes == []
    assert by_name["drums"].is_drum
    path = tmp_path / "song.mid"
    midi.write(str(path))
    loaded = {i.name: i for i in pretty_midi.PrettyMIDI(str(path)).instruments}
    for name in ("piano", "guitar", "drums"):
        assert loaded[name].is_drum == (name == "drums")
        assert loaded[name].program == by_name[name].program
        np.testing.assert_allclose(midi_to_notes(loaded[name]), sources[name], atol=2e-3)


def test_notes_to_midi_respects_an_explicit_drum_set_and_rejects_bad_programs():
    midi = notes_to_midi({"kit": np.array([[0.0, 0.1, 42, 90]])}, drums={"kit"})
    assert midi.instruments[0].is_drum and midi.instruments[0].program == 0
    with pytest.raises(ValueError, match="outside 0..127"):
        notes_to_midi({"piano": np.zeros((0, 4))}, programs={"piano": 128})


def _wavering_note() -> np.ndarray:
    """One held key whose probability dips below 0.6 twice, and a lone bump that never reaches 0.6."""
    probs = np.zeros((88, 60), dtype=np.float32)
    probs[30, 10:40] = 0.9
    probs[30, [18, 27]] = 0.5  # dips: below the start threshold, above the hold threshold
    probs[50, 45:55] = 0.5  # never passes the start threshold
    return probs


def test_a_hold_threshold_keeps_a_wavering_note_whole():
    probs = _wavering_note()
    plain = roll_to_notes(probs, FPS, threshold=0.6)
    held = roll_to_notes(probs, FPS, threshold=0.6, hold_threshold=0.4)
    assert len(plain) == 3  # the dips cut the held note into three, two of them false onsets
    assert len(held) == 1 and held[0, 2] == 30 + 21
    np.testing.assert_allclose(held[0, :2], [10 / FPS, 40 / FPS])
    assert len(roll_to_notes(probs, FPS, threshold=0.4)) == 2  # without hysteresis 0.4 keeps the bump


def test_note_decoding_from_a_recipe_lowers_the_hold_to_a_lower_threshold():
    from omegaconf import OmegaConf

    config = OmegaConf.create({"eval": {"note_threshold": 0.7, "note_hold_threshold": 0.4, "min_note_frames": 3}})
    assert NoteDecoding.from_config(config) == NoteDecoding(0.7, 0.4, 3)
    assert NoteDecoding.from_config(config, threshold=0.3) == NoteDecoding(0.3, 0.3, 3)
    plain = OmegaConf.create({"eval": {"note_threshold": 0.4, "min_note_frames": 2}})  # a recipe saved before the option
    assert NoteDecoding.from_config(plain) == NoteDecoding(0.4, None, 2) and NoteDecoding(0.4).hold == 0.4
    probs = _wavering_note()
    np.testing.assert_array_equal(decode_notes(probs, FPS, NoteDecoding(0.6, 0.4, 2)),
                                  roll_to_notes(probs, FPS, 0.6, 2, hold_threshold=0.4))
