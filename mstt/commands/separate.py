"""``mstt separate [--model NAME_OR_PATH | CHECKPOINT] AUDIO... [--out DIR]``: stems, MIDI and a piano roll per recording.

The model is ``--model`` (a bundled model's name or a checkpoint file), else a first argument
that is a checkpoint (see :func:`is_model_argument`), else the bundled model ``default``.

For each input ``song.ext``: ``DIR/song/<stem>.wav`` (32-bit float, at the input's rate),
``DIR/song/song.mid`` (one named track per source) and ``DIR/song/pianoroll.png``; with
``--html`` also ``mixture.wav``, ``spectrograms.png`` and ``report.html``. Files are written into
``DIR/.song.partial-<pid>/`` and moved into place only when all of them are complete, so a
failure leaves no half-written outputs. A bad input gets one line and the others go on; the exit
status is 1 when any input failed, 2 for a bad checkpoint or bad options.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from mstt.constants import SEPARATE_CHUNK_SECONDS, SEPARATE_OVERLAP_SECONDS, STREAM_BLOCK
from mstt.errors import MsttError
from mstt.fileio import check_out_dir, remove_stale_tmp, write_error
from mstt.runtime import bound_onednn_cache, busy_cores, release_memory, separation_threads

OUTPUTS = ("stems", "midi", "png")
BLOCK = STREAM_BLOCK


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``separate`` sub-command."""
    p = subparsers.add_parser(
        "separate", help="separate and transcribe recordings: stems, MIDI, piano roll",
        usage="mstt separate [--model NAME_OR_PATH | CHECKPOINT] AUDIO... [options]",
        description="Separate and transcribe recordings with the bundled model 'default' (mstt separate song.flac), "
                    "another bundled model (--model NAME; mstt models lists them) or a checkpoint (--model "
                    "runs/x/checkpoints/best.pt, or that file as the first argument). The first argument is read as "
                    "the model when its name ends in .pt, .pth or .ckpt, when it is a torch file (a zip archive or "
                    "pickle, whatever its name), or when it names a bundled model and is no file; every other "
                    "argument is a recording.",
    )
    p.add_argument("inputs", nargs="+", metavar="AUDIO",
                   help="recordings (wav, flac, ogg, mp3: anything libsndfile reads), optionally after a CHECKPOINT")
    p.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                   help="a bundled model's name or a checkpoint/exported file (default: the bundled model 'default')")
    p.add_argument("--out", type=Path, default=Path("separated"), help="output folder (default ./separated)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--chunk-seconds", type=float, default=SEPARATE_CHUNK_SECONDS,
                   help=f"chunk length; memory grows with it, not with the file (default {SEPARATE_CHUNK_SECONDS:g})")
    p.add_argument("--overlap-seconds", type=float, default=SEPARATE_OVERLAP_SECONDS,
                   help=f"cross-fade between chunks (default {SEPARATE_OVERLAP_SECONDS:g})")
    p.add_argument("--threshold", type=float, default=None, help="note threshold on the roll probabilities (default: the recipe's)")
    p.add_argument("--outputs", default=",".join(OUTPUTS), help=f"comma-separated subset of {','.join(OUTPUTS)} (default all)")
    p.add_argument("--html", action="store_true", help="also write report.html with audio players and spectrograms")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: one per core, or the cores other processes leave free)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def is_model_argument(text: str) -> bool:
    """Whether a first argument is the model: a model suffix, a torch file's first bytes, or a bundled name that is no file."""
    from mstt.bundled import MODEL_SUFFIXES, model_names

    path = Path(text)
    if text.endswith(MODEL_SUFFIXES):
        return True
    if path.is_file():
        try:
            with open(path, "rb") as f:
                head = f.read(4)
        except OSError:
            return False
        # torch.save writes a zip archive (or, before torch 1.6, a pickle); no format libsndfile reads begins so.
        return head == b"PK\x03\x04" or head[:1] == b"\x80"
    return not path.exists() and text in model_names()


def split_inputs(inputs: list[str], model: str | None) -> tuple[str | None, list[Path]]:
    """Positional arguments (+ ``--model``) -> (the model to resolve, None for the default; the recordings)."""
    if inputs and is_model_argument(inputs[0]):
        if model is not None:
            raise MsttError(f"the model is given twice (--model {model} and {inputs[0]}); pass one of them")
        if len(inputs) == 1:
            raise MsttError(f"{inputs[0]} is a model; name the recordings after it, e.g. mstt separate {inputs[0]} song.flac")
        return inputs[0], [Path(a) for a in inputs[1:]]
    return model, [Path(a) for a in inputs]


def parse_outputs(text: str) -> set[str]:
    """``stems,midi`` -> {"stems", "midi"}; an unknown name is a usage error."""
    wanted = {w.strip() for w in text.split(",") if w.strip()}
    unknown = sorted(wanted - set(OUTPUTS))
    if unknown or not wanted:
        raise MsttError(f"--outputs {text}: choose from {', '.join(OUTPUTS)} (comma-separated)")
    return wanted


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def probe(path: Path) -> tuple[int, int, int]:
    """(frames, sample rate, channels) after reading the whole file once; MsttError naming the problem."""
    from mstt.inference import audio_problem

    if not path.exists():
        raise MsttError(f"{path}: no such file")
    if path.is_dir():
        raise MsttError(f"{path}: is a folder; pass audio files")
    if path.stat().st_size == 0:
        raise MsttError(f"{path}: the file is empty (0 bytes); pass a recording")
    try:
        f = sf.SoundFile(str(path))
    except Exception as exc:  # libsndfile raises several types for what it cannot read
        raise MsttError(
            f"{path}: not an audio file libsndfile can read ({_reason(exc)}); convert it to WAV or FLAC"
        ) from None
    frames, finite, peak = 0, True, 0.0
    with f:
        try:
            for block in f.blocks(blocksize=BLOCK, dtype="float32", always_2d=True):
                frames += len(block)
                if finite and not np.isfinite(block).all():
                    finite = False
                elif finite:
                    peak = max(peak, float(np.abs(block).max(initial=0.0)))
        except Exception as exc:
            raise MsttError(f"{path}: is truncated or corrupt ({_reason(exc)}); re-export or re-download it") from None
    problem = audio_problem(frames, finite, peak)
    if problem:
        raise MsttError(f"{path}: {problem}")
    return frames, f.samplerate, f.channels


def _mono_blocks(path: Path, tee: sf.SoundFile | None) -> Iterator[np.ndarray]:
    """Downmixed float32 blocks of a file; each also written to ``tee`` when given."""
    with sf.SoundFile(str(path)) as f:
        for block in f.blocks(blocksize=BLOCK, dtype="float32", always_2d=True):
            mono = block.mean(axis=1, dtype=np.float32)
            if tee is not None:
                tee.write(mono)
            yield mono


class _StemWriter:
    """The sink of :meth:`Separator.stream`: one float WAV per stem, opened on the first block."""

    def __init__(self, folder: Path, sample_rate: int, enabled: bool, shown: Path | None = None) -> None:
        self.folder, self.sample_rate, self.enabled = folder, sample_rate, enabled
        self.shown = shown or folder  # where the stems will be once complete: the path a user knows
        self.files: dict[str, sf.SoundFile] = {}

    def __call__(self, names: list[str], block: np.ndarray) -> None:
        if not self.enabled:
            return
        for j, name in enumerate(names):
            try:
                if name not in self.files:
                    # Float samples: stems may exceed full scale and must not clip.
                    self.files[name] = sf.SoundFile(str(self.folder / f"{name}.wav"), "w", self.sample_rate, 1, "FLOAT")
                self.files[name].write(block[j])
            except (OSError, sf.SoundFileRuntimeError) as exc:  # libsndfile says only "System error." on a full disk
                raise write_error(self.shown / f"{name}.wav", exc) from None

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def separate_file(separator: Any, path: Path, folder: Path, args: argparse.Namespace, outputs: set[str]) -> list[str]:
    """Separate one recording into ``folder``; returns the lines to print. MsttError on bad input."""
    from mstt.report.html import pianoroll_figure, spectrogram_figure, write_html_report

    frames, rate, channels = probe(path)
    tmp = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    try:
        tmp.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MsttError(f"{path}: cannot write {folder} ({exc.strerror or exc}); choose a writable --out") from None
    try:
        mixture = sf.SoundFile(str(tmp / "mixture.wav"), "w", rate, 1, "PCM_16") if args.html else None
        writer = _StemWriter(tmp, rate, "stems" in outputs or args.html, shown=folder)
        try:
            result = separator.stream(
                _mono_blocks(path, mixture), frames, rate, writer, args.chunk_seconds, args.overlap_seconds,
                args.threshold, progress=not args.quiet,
            )
        finally:
            writer.close()
            if mixture is not None:
                mixture.close()
        lines = ([f"downmixed {channels} channels to mono"] if channels > 1 else []) + result.messages
        if not result.stem_names:
            lines.append("this model separates nothing (transcription only): no stems")
        if "midi" in outputs and result.notes is not None:
            result.notes.write(str(tmp / f"{folder.name}.mid"))
        if ("png" in outputs or args.html) and result.rolls:
            pianoroll_figure(result.rolls, result.frame_rate, tmp / "pianoroll.png")
        if args.html:
            audio = {"mixture": tmp / "mixture.wav", **{n: tmp / f"{n}.wav" for n in result.stem_names}}
            spectrogram_figure(audio, tmp / "spectrograms.png")
            images = {"spectrograms": tmp / "spectrograms.png"}
            if result.rolls:
                images["piano rolls"] = tmp / "pianoroll.png"
            label = getattr(args, "model_label", "mstt")
            write_html_report(tmp, f"{path.name}: separated by {label}", audio, images, None, lines)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for item in sorted(tmp.iterdir()):
            os.replace(item, folder / item.name)
            written.append(item.name)
        tmp.rmdir()
    except OSError as exc:
        raise MsttError(f"{path}: {write_error(folder, exc)}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lines + [f"wrote {folder}/ ({', '.join(written)})"]


def _folders(paths: list[Path], out: Path) -> list[Path]:
    """``out/<stem>`` per input, unique within the call so that no input overwrites another's outputs.

    Inputs that share a stem get the suffix (song.wav, song.flac -> song-wav, song-flac), then
    their folder's name (Slakh's Track00001/mix.flac, Track00002/mix.flac -> Track00001-mix, ...),
    then a count (the same file given twice).
    """
    namings = (
        lambda p: p.stem,
        lambda p: f"{p.stem}-{p.suffix.lstrip('.')}",
        lambda p: f"{p.parent.name}-{p.stem}",
        lambda p: f"{p.parent.name}-{p.stem}-{p.suffix.lstrip('.')}",
    )
    names: list[str | None] = [None] * len(paths)
    for naming in namings:
        open_ = [i for i, n in enumerate(names) if n is None]
        proposed = {i: naming(paths[i]) for i in open_}
        counts = Counter([*proposed.values(), *(n for n in names if n is not None)])
        for i, name in proposed.items():
            if counts[name] == 1:
                names[i] = name
    taken = Counter(n for n in names if n is not None)
    for i, name in enumerate(names):
        if name is None:
            base = namings[-1](paths[i])
            k = 1
            while f"{base}-{k}" in taken:
                k += 1
            names[i] = f"{base}-{k}"
            taken[names[i]] += 1
    return [out / str(n) for n in names]


def _set_threads(requested: int | None) -> None:
    """``--threads``, or fewer threads than cores when other processes keep some busy (mstt/runtime.py)."""
    import torch

    if requested is not None:
        if requested < 1:
            raise MsttError(f"--threads {requested}: need at least 1")
        torch.set_num_threads(requested)
        return
    # The recurrent trunk synchronises its threads at every frame: beside a training run that holds
    # the cores, threads that wait for a core cost both jobs far more than they bring.
    cores = torch.get_num_threads()
    busy = busy_cores()
    threads = separation_threads(cores, busy)
    if threads < cores:
        torch.set_num_threads(threads)
        print(f"note: other processes keep {busy:.1f} of {cores} cores busy: separating with {threads} thread(s) "
              f"(--threads N to choose)")


def run(args: argparse.Namespace) -> int:
    """Load the model once, then separate every input; 0 when all succeeded, 1 when any failed."""
    from mstt.bundled import resolve_model
    from mstt.inference import load

    model, args.audio = split_inputs(args.inputs, args.model)
    outputs = parse_outputs(args.outputs)
    if args.chunk_seconds <= 0 or args.overlap_seconds < 0:
        raise MsttError("--chunk-seconds must be above 0 and --overlap-seconds at least 0")
    _set_threads(args.threads)
    check_out_dir(args.out)
    remove_stale_tmp(args.out, depth=0)  # .song.partial-PID/ folders of a killed separate
    file, name = resolve_model(model, where="--model" if args.model else "",
                               how="pass one: mstt separate --model runs/NAME/checkpoints/best.pt AUDIO...")
    args.model_label = name or file.name
    bound_onednn_cache()  # before the first primitive: each file's last chunk has a shape of its own (mstt/runtime.py)
    separator = load(file, args.device)
    for line in separator.messages:
        print(f"note: {line}")
    failed = 0
    bar = tqdm(list(zip(args.audio, _folders(args.audio, args.out))), unit="file", desc="files",
               disable=args.quiet or len(args.audio) < 2, dynamic_ncols=True)
    for path, folder in bar:
        release_memory()  # what the previous file freed goes back to the system: memory flat over many files
        try:
            lines = separate_file(separator, path, folder, args, outputs)
        except MsttError as exc:
            failed += 1
            tqdm.write(f"mstt: error: {exc}", file=sys.stderr)
            continue
        except (RuntimeError, ValueError, MemoryError) as exc:  # e.g. out of memory: name the file, go on
            failed += 1
            tqdm.write(f"mstt: error: {path}: separation failed ({type(exc).__name__}: {_reason(exc)})", file=sys.stderr)
            continue
        tqdm.write(f"{path}: " + "; ".join(lines))
    if failed:
        tqdm.write(f"{failed} of {len(args.audio)} files failed", file=sys.stderr)
    return 1 if failed else 0
