"""Numbers that several modules share, each defined once with the reason for its value.

This module imports nothing, so that the recipe schema and the command line read these without
loading torch. Where two values of one kind differ, they differ on purpose and have two names.
The piano roll's grid (``N_KEYS``, ``LOWEST_KEY``, ``MIN_VELOCITY``) is defined with the rolls,
in :mod:`mstt.features.rolls`.
"""

from __future__ import annotations

# Long recordings run through a model in chunks, two ways:
# - evaluation (``eval.chunk_seconds``, :func:`mstt.evaluate.infer`) stitches non-overlapping
#   chunks frame by frame, so every chunk boundary costs the frames next to it their context:
#   long chunks, few boundaries;
# - ``mstt separate`` and :class:`mstt.inference.Separator` cross-fade overlapping chunks, which
#   hides the boundaries, and stream arbitrarily long files: short chunks, little memory.
EVAL_CHUNK_SECONDS = 30.0
SEPARATE_CHUNK_SECONDS = 10.0
SEPARATE_OVERLAP_SECONDS = 1.0
STREAM_BLOCK = 1 << 16  # samples read from a file, or handed on from an array, at a time when streaming

# Silence, as the peak of float audio in [-1, 1], three ways:
# - a reference source quieter than -80 dBFS in an evaluation window has no meaningful SDR: its
#   row is not scored and left out of the averages (docs/design.md, metrics.json);
# - a recording quieter than -120 dBFS is refused by ``separate`` (nothing to separate); a quiet
#   but real recording, far below what evaluation calls a silent source, is still separated;
# - a source quieter than -60 dBFS in a training crop makes the crop be drawn again (the adapters'
#   ``data.options.silence_threshold``): a crop should hear every source the track holds.
SILENT_REFERENCE_PEAK = 1e-4
SILENT_RECORDING_PEAK = 1e-6
SILENT_CROP_PEAK = 1e-3
