"""Separate and transcribe whole recordings: ``mstt.load(path).separate(waveform, sample_rate)``.

A recording of any length is processed in overlapping chunks at the model's sample rate and
cross-faded, so memory holds one chunk plus the rolls (a few MB a minute), not the whole
recording's activations. :meth:`Separator.stream` goes further: it reads blocks and hands
finished stem blocks to a sink (the CLI writes them straight to disk), so memory is flat with
duration. Resampling in and out streams too (:class:`StreamResampler`, exact against a
whole-signal ``scipy.signal.resample_poly``).

One module per duty, in the order a recording meets them:

- :mod:`.audio`: the input checked and downmixed; :class:`ResampledReader` turns blocks at the
  input's rate into chunks at the model's, :class:`ResampledSink` hands stems back at the input's;
- :mod:`.stitch`: :class:`ChunkPlan` (where chunks lie and how they cross-fade),
  :class:`StemStitcher` (chunk stems -> the cross-faded whole, released as it is final) and
  :class:`FrameStitcher` (frame outputs -> the whole recording's frame grid);
- :mod:`.separator`: :class:`Separator`, which runs each chunk through the model and joins the
  parts, and :func:`load`.

Models whose stems come in an arbitrary order per chunk (deep clustering alone, or a separator
with ``permutation_invariant = True``: evaluation's rule, ``stems_unordered``) are aligned chunk
to chunk by correlating the overlap; their stems are named ``cluster1``... since no instrument
name belongs to them.
"""

from mstt.evaluate.inference import chunk_bounds
from mstt.inference.audio import (
    BLOCK,
    SILENT_PEAK,
    ResampledReader,
    ResampledSink,
    Sink,
    StreamResampler,
    as_mono,
    audio_problem,
    check_audio,
    iter_blocks,
)
from mstt.inference.separator import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_OVERLAP_SECONDS,
    ChunkEstimates,
    SeparationResult,
    Separator,
    StreamResult,
    load,
)
from mstt.inference.stitch import ChunkPlan, FrameStitcher, StemStitcher, align_order, crossfade_weights

__all__ = [
    "BLOCK",
    "DEFAULT_CHUNK_SECONDS",
    "DEFAULT_OVERLAP_SECONDS",
    "SILENT_PEAK",
    "ChunkEstimates",
    "ChunkPlan",
    "FrameStitcher",
    "ResampledReader",
    "ResampledSink",
    "SeparationResult",
    "Separator",
    "Sink",
    "StemStitcher",
    "StreamResampler",
    "StreamResult",
    "align_order",
    "as_mono",
    "audio_problem",
    "check_audio",
    "chunk_bounds",
    "crossfade_weights",
    "iter_blocks",
    "load",
]
