"""The :class:`Separator`: a loaded model that runs chunk by chunk and joins the parts (:mod:`mstt.inference`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pretty_midi
import torch
from tqdm.auto import tqdm

from mstt.constants import SEPARATE_CHUNK_SECONDS, SEPARATE_OVERLAP_SECONDS
from mstt.data.classes import is_instrument
from mstt.decode import NoteDecoding, note_decoder, notes_from_outputs, notes_to_midi
from mstt.errors import MsttError
from mstt.evaluate.inference import is_frame_output, model_outputs, stems_from_outputs, stems_unordered
from mstt.inference.audio import ResampledReader, ResampledSink, Sink, as_mono, check_audio, iter_blocks
from mstt.inference.stitch import ChunkPlan, FrameStitcher, StemStitcher
from mstt.nn.outputs import ROLL, output_roles, stems_output

# Defaults of separate() and stream() (mstt.constants says why).
DEFAULT_CHUNK_SECONDS = SEPARATE_CHUNK_SECONDS
DEFAULT_OVERLAP_SECONDS = SEPARATE_OVERLAP_SECONDS


@dataclass
class SeparationResult:
    """Stems ``{name: (samples,)}`` at the input rate, rolls ``{source: (88, frames)}``, notes as MIDI."""

    stems: dict[str, np.ndarray]
    rolls: dict[str, np.ndarray]  # note probabilities, row 0 = MIDI 21, at ``frame_rate``
    notes: pretty_midi.PrettyMIDI | None  # one named track per source; None without a transcription head
    sample_rate: int
    frame_rate: float
    messages: list[str] = field(default_factory=list)  # what was done to the input (downmix, resampling)


@dataclass
class StreamResult:
    """What :meth:`Separator.stream` returns: the stems' names (their audio went to the sink), rolls and notes."""

    stem_names: list[str]  # the rows of every block handed to the sink, in order; empty: the model separates nothing
    rolls: dict[str, np.ndarray]
    notes: pretty_midi.PrettyMIDI | None
    sample_rate: int
    frame_rate: float
    messages: list[str] = field(default_factory=list)


@dataclass
class ChunkEstimates:
    """One chunk's estimates, as numpy arrays."""

    stems: np.ndarray | None  # (S, chunk samples) at the model's rate; None: the model separates nothing
    frames: dict[str, np.ndarray]  # outputs on the roll's grid, {name: (S, 88, chunk frames)}
    stems_from: str | None  # how the stems were read (mstt.nn.outputs.STEMS_ORDER)


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
        blocks: list[np.ndarray] = []  # the sink's (S, n) blocks, in order
        done = self.stream(
            iter_blocks(mono), len(mono), int(sample_rate), lambda _, block: blocks.append(block),
            chunk_seconds, overlap_seconds, threshold, progress,
        )
        stems = np.concatenate(blocks, axis=-1) if blocks else np.zeros((len(done.stem_names), 0), np.float32)
        messages = ([f"downmixed {channels} channels to mono"] if channels > 1 else []) + done.messages
        return SeparationResult(
            {name: stems[j] for j, name in enumerate(done.stem_names)},
            done.rolls, done.notes, done.sample_rate, done.frame_rate, messages,
        )

    def stream(
        self,
        blocks: Iterable[np.ndarray],
        samples: int,
        sample_rate: int,
        sink: Sink,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        threshold: float | None = None,
        progress: bool = False,
    ) -> StreamResult:
        """Mono blocks (``samples`` in all, at ``sample_rate``) -> ``sink(names, stems (S, n))`` in order, at ``sample_rate``.

        Returns the stems' names, the rolls and the notes. Memory holds one chunk and the overlap
        still being cross-faded, however long the recording, plus its frame outputs (a few MB a minute).
        """
        plan = ChunkPlan.for_recording(samples, sample_rate, self.sample_rate, self.hop, chunk_seconds, overlap_seconds)
        reader = ResampledReader(blocks, sample_rate, self.sample_rate)
        frames = FrameStitcher(plan)
        messages = [] if sample_rate == self.sample_rate else [
            f"resampled {sample_rate} Hz to the model's {self.sample_rate} Hz and back"]
        bar = tqdm(total=len(plan.bounds), unit="chunk", desc="chunks", leave=False, disable=not progress, dynamic_ncols=True)
        with torch.inference_mode(), bar:
            for k, piece in enumerate(reader.chunks(plan.bounds)):
                a, b = plan.bounds[k]
                chunk = self.run_chunk(piece, b - a)
                if k == 0:  # only the model's outputs tell how many stems there are and whether their order holds
                    names, unordered = self.stem_names(chunk)
                    if unordered:
                        messages.append("stems of this model come in no fixed instrument order: named cluster1...")
                    stems = StemStitcher(plan, len(names), unordered)
                    out = ResampledSink(sink, names, self.sample_rate, sample_rate, samples)
                if chunk.stems is not None:
                    out.push(stems.add(k, chunk.stems), last=plan.is_last(k))
                frames.add(k, chunk.frames)
                bar.update(1)
        rolls, notes = self.read_frames(frames.grids, threshold)
        return StreamResult(names, rolls, notes, sample_rate, self.frame_rate, messages + list(self.messages))

    def run_chunk(self, piece: np.ndarray, length: int) -> ChunkEstimates:
        """One chunk's model-rate samples ``(n <= length,)`` -> its stems ``(S, length)`` and frame outputs."""
        # Zeros make up for a source shorter than promised, and give a very short recording
        # the window length the STFT needs; what they add is cut off again here and by FrameStitcher.
        piece = np.pad(piece, (0, max(length, self.min_samples) - len(piece)))
        mixture = torch.from_numpy(np.ascontiguousarray(piece)).to(self.device).unsqueeze(0)  # (1, n)
        outputs = model_outputs(self.model, mixture)
        stems, _ = stems_from_outputs(self.model, outputs, mixture, roles=self.roles)  # (1, S, n)
        found = stems_output(self.roles, outputs)
        return ChunkEstimates(
            stems=None if stems is None else stems[0, :, :length].float().cpu().numpy(),
            frames={name: value[0].float().cpu().numpy()  # (S, 88, frames)
                    for name, value in outputs.items() if is_frame_output(name, value, self.roles)},
            stems_from=found[1] if found is not None else None,
        )

    def stem_names(self, chunk: ChunkEstimates) -> tuple[list[str], bool]:
        """(stem names, whether their order may change from chunk to chunk), from the first chunk's estimates."""
        if chunk.stems is None or chunk.stems_from is None:
            return [], False
        n_stems = chunk.stems.shape[0]
        # Evaluation's rule (it pairs such stems with the references by permutation): deep
        # clustering's clusters and a permutation-invariant separator's waveforms have no order;
        # a mask head's masks follow the sources, whatever the model says.
        if stems_unordered(self.model, chunk.stems_from):
            return [f"cluster{j + 1}" for j in range(n_stems)], True
        return self.sources[:n_stems], False

    def read_frames(
        self, grids: dict[str, np.ndarray], threshold: float | None
    ) -> tuple[dict[str, np.ndarray], pretty_midi.PrettyMIDI | None]:
        """Stitched frame outputs ``{name: (S, 88, frames)}`` -> (rolls of the instrument sources, MIDI); no roll: ({}, None)."""
        roll_name = next((name for name in grids if self.roles[name].notes == ROLL), None)
        if roll_name is None:
            return {}, None
        roll = grids[roll_name]
        extra = {name: grid for name, grid in grids.items() if name != roll_name}
        # OTHER is separated, never transcribed: no roll, no MIDI track (mstt.data.classes.OTHER)
        rolls = {s: roll[j] for j, s in enumerate(self.sources) if is_instrument(s)}
        return rolls, self.transcribe(roll, extra, threshold)

    def transcribe(self, roll: np.ndarray, extra: dict[str, np.ndarray], threshold: float | None = None) -> pretty_midi.PrettyMIDI:
        """Roll probabilities ``(S, 88, frames)`` (+ other frame outputs) -> one named MIDI track per source."""
        decoding = self.decoding if threshold is None else NoteDecoding.from_config(self.config, threshold)
        notes = notes_from_outputs(roll, extra, self.frame_rate, decoding, self.decoder)
        return notes_to_midi({s: notes[j] for j, s in enumerate(self.sources) if is_instrument(s)})


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
