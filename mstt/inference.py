"""Separate and transcribe whole recordings: ``mstt.load(path).separate(waveform, sample_rate)``.

A recording of any length is processed in overlapping chunks at the model's sample rate and
cross-faded, so memory holds one chunk plus the rolls (a few MB a minute), not the whole
recording's activations. :meth:`Separator.stream` goes further: it reads blocks and hands
finished stem blocks to a sink (the CLI writes them straight to disk), so memory is flat with
duration. Resampling in and out streams too (:class:`StreamResampler`, exact against a
whole-signal ``scipy.signal.resample_poly``).

Models whose stems come in an arbitrary order per chunk (deep clustering alone, or a separator
with ``permutation_invariant = True``: evaluation's rule, ``stems_unordered``) are aligned chunk
to chunk by correlating the overlap; their stems are named ``cluster1``... since no instrument
name belongs to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pretty_midi
import torch
from scipy.optimize import linear_sum_assignment
from scipy.signal import resample_poly
from tqdm.auto import tqdm

from mstt.constants import SEPARATE_CHUNK_SECONDS, SEPARATE_OVERLAP_SECONDS, SILENT_RECORDING_PEAK, STREAM_BLOCK
from mstt.data.classes import is_instrument
from mstt.decode import NoteDecoding, note_decoder, notes_from_outputs, notes_to_midi
from mstt.errors import MsttError
from mstt.evaluate.inference import (
    chunk_bounds,
    is_frame_output,
    model_outputs,
    stems_from_outputs,
    stems_unordered,
)
from mstt.features.rolls import N_KEYS
from mstt.nn.outputs import ROLL, output_roles, stems_output

# Defaults of separate() and stream(), and the silence that is refused (mstt.constants says why).
DEFAULT_CHUNK_SECONDS = SEPARATE_CHUNK_SECONDS
DEFAULT_OVERLAP_SECONDS = SEPARATE_OVERLAP_SECONDS
SILENT_PEAK = SILENT_RECORDING_PEAK
BLOCK = STREAM_BLOCK


@dataclass
class SeparationResult:
    """Stems ``{name: (samples,)}`` at the input rate, rolls ``{source: (88, frames)}``, notes as MIDI."""

    stems: dict[str, np.ndarray]
    rolls: dict[str, np.ndarray]  # note probabilities, row 0 = MIDI 21, at ``frame_rate``
    notes: pretty_midi.PrettyMIDI | None  # one named track per source; None without a transcription head
    sample_rate: int
    frame_rate: float
    messages: list[str] = field(default_factory=list)  # what was done to the input (downmix, resampling)


class StreamResampler:
    """Polyphase resampling of a stream of blocks ``(..., n)``; output equals resample_poly of the whole."""

    def __init__(self, rate_from: int, rate_to: int) -> None:
        g = math.gcd(rate_from, rate_to)
        self.up, self.down = rate_to // g, rate_from // g
        self.identity = rate_from == rate_to
        # resample_poly's filter reaches 10 * max(up, down) upsampled samples each way; the
        # margin (a multiple of ``down``, so block starts stay on the output grid) covers it.
        reach = 10 * max(self.up, self.down) / self.up
        self.margin = math.ceil((reach + 1) / self.down) * self.down
        self.buf: np.ndarray | None = None
        self.start = 0  # input position of buf[..., 0]
        self.done = 0  # input position up to which output was returned

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Add input samples; returns every output sample that no later input can change."""
        if self.identity:
            return block
        buf = block if self.buf is None else np.concatenate([self.buf, block], axis=-1)
        end = self.start + buf.shape[-1]
        upto = end if last else (end - self.margin) // self.down * self.down
        if upto <= self.done:
            self.buf = buf
            return buf[..., :0]
        y = resample_poly(buf, self.up, self.down, axis=-1)
        i0 = (self.done - self.start) * self.up // self.down
        i1 = -(-(upto - self.start) * self.up // self.down)
        keep = max(self.start, upto - self.margin)
        self.buf, self.start, self.done = buf[..., keep - self.start :], keep, upto
        return y[..., i0:i1].astype(np.float32, copy=False)


def crossfade_weights(t: np.ndarray, k: int, bounds: list[tuple[int, int]]) -> np.ndarray:
    """Weight of chunk ``k`` at positions ``t``: linear ramps over its overlaps, summing to 1 across chunks."""
    a, b = bounds[k]
    w = np.ones(t.shape, dtype=np.float32)
    if k > 0:
        overlap = bounds[k - 1][1] - a
        ramp = (t - a + 0.5) / overlap if overlap > 0 else (t >= a).astype(np.float32)
        w = np.minimum(w, np.clip(ramp, 0, 1))
    if k + 1 < len(bounds):
        overlap = b - bounds[k + 1][0]
        ramp = (b - t - 0.5) / overlap if overlap > 0 else (t < b).astype(np.float32)
        w = np.minimum(w, np.clip(ramp, 0, 1))
    return w.astype(np.float32)


def align_order(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Previous and current stems ``(S, n)`` on the same overlap -> ``perm`` with ``current[perm[j]]`` ~ ``previous[j]``."""
    p = previous / (np.linalg.norm(previous, axis=-1, keepdims=True) + 1e-8)
    c = current / (np.linalg.norm(current, axis=-1, keepdims=True) + 1e-8)
    rows, cols = linear_sum_assignment(p @ c.T, maximize=True)
    perm = np.empty(len(rows), dtype=np.int64)
    perm[rows] = cols
    return perm


def as_mono(waveform: Any) -> tuple[np.ndarray, int]:
    """Array or tensor ``(samples,)``, ``(channels, samples)`` or ``(samples, channels)`` -> (mono float32, channels)."""
    x = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    if x.ndim == 1:
        return x.astype(np.float32, copy=False), 1
    if x.ndim != 2:
        raise MsttError(f"waveform must be (samples,) or (channels, samples); got shape {x.shape}")
    if x.size == 0:  # (channels, 0) or (0, channels): no samples whichever axis is time (not a NaN mean)
        return np.zeros(0, np.float32), max(x.shape)
    if x.shape[0] > x.shape[1]:  # (samples, channels), as soundfile reads it
        x = x.T
    return x.mean(axis=0, dtype=np.float64).astype(np.float32), x.shape[0]


def audio_problem(samples: int, finite: bool, peak: float) -> str | None:
    """Why a recording cannot be separated (zero-length, NaN, silent), or None when it can."""
    if samples == 0:
        return "holds no samples (a zero-length recording); pass a recording with audio in it"
    if not finite:
        return "holds NaN or infinite samples; repair or re-export the recording"
    if peak < SILENT_PEAK:
        return "is silent (peak below -120 dBFS); there is nothing to separate"
    return None


def check_audio(x: np.ndarray, what: str) -> None:
    """Refuse empty, non-finite or silent audio with a one-line MsttError naming ``what``."""
    finite = bool(np.isfinite(x).all())
    problem = audio_problem(x.size, finite, float(np.abs(x).max()) if finite and x.size else 0.0)
    if problem:
        raise MsttError(f"{what}: {problem}")


class Separator:
    """A loaded model ready to separate and transcribe recordings (see :func:`load`)."""

    def __init__(self, model: torch.nn.Module, config: Any, device: torch.device, messages: list[str] | None = None) -> None:
        self.model = model.to(device).eval()
        self.config = config
        self.device = device
        self.sources: list[str] = list(model.sources)
        self.sample_rate = int(model.sample_rate)
        self.hop = int(config.features.hop_length)
        self.frame_rate = self.sample_rate / self.hop
        self.decoding = NoteDecoding.from_config(config)
        self.decoder = note_decoder(model)
        self.roles = output_roles(model)  # what each output is for: stems, the roll's grid, the roll
        self.min_samples = int(config.features.n_fft)  # shortest input the centred STFT accepts, with margin
        self.messages = list(messages or [])  # what loading noticed (e.g. another mstt version)

    def separate(
        self,
        waveform: Any,
        sample_rate: int,
        *,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        threshold: float | None = None,
        progress: bool = False,
    ) -> SeparationResult:
        """Waveform (mono, or channels that are averaged) at ``sample_rate`` -> stems, rolls and notes."""
        if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise MsttError(f"sample_rate must be a positive integer; got {sample_rate!r}")
        mono, channels = as_mono(waveform)
        check_audio(mono, "waveform")
        parts: list[np.ndarray] = []
        result = self.stream(
            iter_blocks(mono), len(mono), int(sample_rate), lambda _, block: parts.append(block),
            chunk_seconds, overlap_seconds, threshold, progress,
        )
        if parts:
            stems = np.concatenate(parts, axis=-1)
            result.stems = {name: stems[j] for j, name in enumerate(result.stems)}
        if channels > 1:
            result.messages.insert(0, f"downmixed {channels} channels to mono")
        return result

    def stream(
        self,
        blocks: Iterable[np.ndarray],
        samples: int,
        sample_rate: int,
        sink: Callable[[list[str], np.ndarray], None],
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        threshold: float | None = None,
        progress: bool = False,
    ) -> SeparationResult:
        """Mono blocks (``samples`` in all, at ``sample_rate``) -> ``sink(names, stems (S, n))`` in order, at ``sample_rate``.

        The returned result holds the rolls and notes, and ``stems`` maps each stem name to an
        empty array (the audio went to the sink).
        """
        if chunk_seconds <= 0 or overlap_seconds < 0:
            raise MsttError(f"chunk length {chunk_seconds} s / overlap {overlap_seconds} s: need chunk > 0, overlap >= 0")
        sr, hop = self.sample_rate, self.hop
        chunk = max(2 * hop, int(round(chunk_seconds * sr / hop)) * hop)
        overlap = min(int(round(overlap_seconds * sr / hop)) * hop, chunk // 2 // hop * hop)
        total = -(-samples * sr // sample_rate)  # length at the model's rate, as resample_poly makes it
        bounds = chunk_bounds(total, chunk, overlap)
        n_frames = 1 + total // hop
        into, back = StreamResampler(sample_rate, sr), StreamResampler(sr, sample_rate)
        source = iter(blocks)
        buf, buf_start, exhausted = np.zeros(0, np.float32), 0, False
        acc: np.ndarray | None = None  # cross-faded stems at the model rate from acc_start
        acc_start, written = 0, 0
        frames: dict[str, np.ndarray] = {}
        names: list[str] | None = None
        unordered = False
        messages = [f"resampled {sample_rate} Hz to the model's {sr} Hz and back"] if sample_rate != sr else []
        bar = tqdm(total=len(bounds), unit="chunk", desc="chunks", leave=False, disable=not progress, dynamic_ncols=True)
        with torch.inference_mode(), bar:
            for k, (a, b) in enumerate(bounds):
                last = k == len(bounds) - 1
                while buf_start + len(buf) < b and not exhausted:
                    block = next(source, None)
                    exhausted = block is None
                    more = into.push(np.zeros(0, np.float32) if exhausted else np.asarray(block, np.float32), last=exhausted)
                    buf = np.concatenate([buf, more])
                piece = buf[a - buf_start : b - buf_start]
                # Zeros make up for a source shorter than promised, and give a very short recording
                # the window length the STFT needs; what they add is cut off again below.
                piece = np.pad(piece, (0, max(b - a, self.min_samples) - len(piece)))
                mixture = torch.from_numpy(np.ascontiguousarray(piece)).to(self.device).unsqueeze(0)  # (1, n)
                outputs = model_outputs(self.model, mixture)
                stems, _ = stems_from_outputs(self.model, outputs, mixture, roles=self.roles)
                stems = stems[..., : b - a] if stems is not None else None
                if names is None:
                    found = stems_output(self.roles, outputs)
                    unordered = stems is not None and found is not None and stems_unordered(self.model, found[1])
                    n_stems = 0 if stems is None else stems.shape[1]
                    names = [f"cluster{j + 1}" for j in range(n_stems)] if unordered else self.sources[:n_stems]
                    if unordered:
                        messages.append("stems of this model come in no fixed instrument order: named cluster1...")
                    acc = np.zeros((n_stems, 0), np.float32)
                t0 = np.arange(a, b)
                if stems is not None:
                    est = stems[0].float().cpu().numpy()  # (S, n)
                    grow = b - acc_start - acc.shape[1]
                    if grow > 0:
                        acc = np.concatenate([acc, np.zeros((acc.shape[0], grow), np.float32)], axis=1)
                    if unordered and k > 0 and bounds[k - 1][1] > a:
                        seen = acc[:, a - acc_start : bounds[k - 1][1] - acc_start]
                        est = est[align_order(seen, est[:, : seen.shape[1]])]
                    acc[:, a - acc_start : b - acc_start] += est * crossfade_weights(t0, k, bounds)
                    final = total if last else bounds[k + 1][0]
                    out = back.push(acc[:, : final - acc_start], last=last)
                    acc, acc_start = acc[:, final - acc_start :], final
                    out = out[:, : max(0, samples - written)]
                    written += out.shape[1]
                    if out.shape[1]:
                        sink(names, out)
                f0 = a // hop
                for name, value in outputs.items():
                    if not is_frame_output(name, value, self.roles):
                        continue
                    grid = frames.setdefault(name, np.zeros((value.shape[1], N_KEYS, n_frames), np.float32))
                    part = value[0, ..., : min(n_frames - f0, 1 + (b - a) // hop)].float().cpu().numpy()
                    w = crossfade_weights((f0 + np.arange(part.shape[-1])) * hop, k, bounds)
                    grid[..., f0 : f0 + part.shape[-1]] += part * w
                if not last:
                    cut = bounds[k + 1][0] - buf_start
                    buf, buf_start = buf[cut:], buf_start + cut
                bar.update(1)
        roll_name = next((name for name in frames if self.roles[name].notes == ROLL), None)
        roll = frames.pop(roll_name) if roll_name is not None else None
        # OTHER is separated, never transcribed: no roll, no MIDI track (mstt.data.classes.OTHER)
        rolls = {s: roll[j] for j, s in enumerate(self.sources) if is_instrument(s)} if roll is not None else {}
        notes = self.transcribe(roll, frames, threshold) if roll is not None else None
        empty = {name: np.zeros(0, np.float32) for name in names or []}
        return SeparationResult(empty, rolls, notes, sample_rate, self.frame_rate, messages + list(self.messages))

    def transcribe(self, roll: np.ndarray, extra: dict[str, np.ndarray], threshold: float | None = None) -> pretty_midi.PrettyMIDI:
        """Roll probabilities ``(S, 88, frames)`` (+ other frame outputs) -> one named MIDI track per source."""
        decoding = self.decoding if threshold is None else NoteDecoding.from_config(self.config, threshold)
        notes = notes_from_outputs(roll, extra, self.frame_rate, decoding, self.decoder)
        return notes_to_midi({s: notes[j] for j, s in enumerate(self.sources) if is_instrument(s)})


def iter_blocks(x: np.ndarray, size: int = BLOCK) -> Iterator[np.ndarray]:
    """Consecutive blocks of a 1-D array."""
    for i in range(0, len(x), size):
        yield x[i : i + size]


def load(path: str | Path | None = None, device: str | torch.device | None = None) -> Separator:
    """A bundled model's name (None: ``default``), a checkpoint or an exported model (``weights_only``) -> :class:`Separator`."""
    from mstt.bundled import resolve_model
    from mstt.checkpoints import model_from_checkpoint
    from mstt.devices import resolve_device

    if isinstance(device, str) and device.strip().lower().startswith("cuda") and not torch.cuda.is_available():
        raise MsttError(f"device {device}: no GPU is visible; use cpu or auto")
    device = torch.device(device) if isinstance(device, torch.device) else resolve_device(device or "auto")
    file, _ = resolve_model(path, how='pass a checkpoint: mstt.load("runs/NAME/checkpoints/best.pt")')
    model, config, messages = model_from_checkpoint(file)
    return Separator(model, config, device, messages)
