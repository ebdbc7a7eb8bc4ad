"""Decoding model outputs: masks -> stems, embeddings -> masks, piano rolls -> notes -> MIDI."""

from mstt.decode.kmeans import embeddings_to_masks, kmeans
from mstt.decode.masks import masks_to_stems
from mstt.decode.notes import (
    NoteDecoding,
    decode_notes,
    midi_to_notes,
    notes_to_midi,
    notes_to_onset_roll,
    notes_to_roll,
    roll_to_notes,
)
from mstt.decode.outputs import note_decoder, notes_from_outputs
from mstt.decode.permutation import apply_permutation, best_permutation, pairwise_si_sdr

__all__ = [
    "NoteDecoding",
    "apply_permutation",
    "best_permutation",
    "decode_notes",
    "embeddings_to_masks",
    "kmeans",
    "masks_to_stems",
    "midi_to_notes",
    "note_decoder",
    "notes_from_outputs",
    "notes_to_midi",
    "notes_to_onset_roll",
    "notes_to_roll",
    "pairwise_si_sdr",
    "roll_to_notes",
]
