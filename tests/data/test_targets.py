"""Roll and onset targets on the STFT frame grid, and notes cut to a window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mstt.data.targets import N_KEYS, n_frames, rolls, stacked_rolls, window_notes
from tests.data.conftest import frame_of

SR, HOP = 16000, 256



def notes(*rows: tuple[float, float, int, int]) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def test_frame_count_matches_torch_stft_center_grid() -> None:
    for samples in (32000, 32255, 32256, 1024):
        spec = torch.stft(torch.zeros(samples), 1024, HOP, window=torch.hann_window(1024), center=True,
                          return_complex=True)
        assert n_frames(samples, HOP) == spec.shape[-1]


@pytest.mark.parametrize("t", [0.0, 0.1, 0.5, 0.77, 1.234, 1.9])
def test_note_at_t_lands_on_rounded_frame(t: float) -> None:
    roll, onset = rolls(notes((t, t + 0.05, 60, 100)), 0.0, 2 * SR, SR, HOP)
    expected = frame_of(t * SR / HOP)
    assert onset[60 - 21].nonzero()[0].tolist() == [expected]
    assert roll[60 - 21, expected] == 1
    assert roll.shape == onset.shape == (N_KEYS, n_frames(2 * SR, HOP))


def test_roll_spans_onset_to_offset_frame() -> None:
    roll, _ = rolls(notes((0.5, 1.0, 64, 80)), 0.0, 2 * SR, SR, HOP)
    active = roll[64 - 21].nonzero()[0]
    assert active[0] == frame_of(0.5 * SR / HOP) and active[-1] == frame_of(1.0 * SR / HOP) - 1
    assert roll.sum() == len(active)  # nothing else is on


def test_quiet_notes_and_out_of_range_keys_are_dropped() -> None:
    roll, onset = rolls(notes((0.1, 0.5, 60, 29), (0.2, 0.5, 62, 30), (0.1, 0.5, 20, 100), (0.1, 0.5, 109, 100)),
                        0.0, SR, SR, HOP)
    assert roll[60 - 21].sum() == 0 and onset[60 - 21].sum() == 0  # velocity 29 < 30
    assert roll[62 - 21].sum() > 0  # velocity 30 is kept
    assert roll.sum() == roll[62 - 21].sum()  # MIDI 20 and 109 are off the 88 keys


def test_window_shifts_notes_and_onsets_before_it_are_not_marked() -> None:
    # Window starts at 1 s: a note held from 0.8 s is on from frame 0 without an onset there;
    # a note at 1.5 s lands on frame frame_of(0.5 s * SR / HOP).
    roll, onset = rolls(notes((0.8, 1.2, 60, 100), (1.5, 1.6, 70, 100), (3.0, 3.5, 72, 100)), 1.0, SR, SR, HOP)
    assert roll[60 - 21, 0] == 1 and onset[60 - 21].sum() == 0
    assert onset[70 - 21].nonzero()[0].tolist() == [frame_of(0.5 * SR / HOP)]
    assert roll[72 - 21].sum() == 0  # after the window


def test_short_note_still_gets_its_onset_frame() -> None:
    roll, onset = rolls(notes((0.5, 0.5001, 38, 100)), 0.0, SR, SR, HOP)
    assert roll[38 - 21].sum() == 1 and onset[38 - 21, frame_of(0.5 * SR / HOP)] == 1


def test_window_notes_clip_and_keep_quiet_notes() -> None:
    src = notes((0.5, 1.5, 60, 10), (1.2, 1.4, 62, 100), (2.9, 3.5, 64, 100), (3.0, 3.2, 65, 100), (0.1, 0.2, 66, 90))
    out = window_notes(src, 1.0, 2.0)
    assert out.dtype == np.float64 and out.shape == (3, 4)
    np.testing.assert_allclose(out[:, :2], [[0.0, 0.5], [0.2, 0.4], [1.9, 2.0]], atol=1e-9)
    assert out[0, 3] == 10  # no velocity filter on notes


def test_stacked_rolls_one_row_per_source() -> None:
    roll, onset = stacked_rolls([notes((0.1, 0.3, 60, 90)), notes()], 0.0, SR, SR, HOP)
    assert roll.shape == (2, N_KEYS, n_frames(SR, HOP)) and roll.dtype == np.float32
    assert roll[0].sum() > 0 and roll[1].sum() == 0 and onset[1].sum() == 0
