"""Built-in evaluation metrics: SI-SDR, SDR, BSS-Eval (mir_eval) and mir_eval transcription scores.

Separation metrics take waveforms ``(n, samples)`` (row ``i`` of the estimate is scored against
row ``i`` of the reference; pair them first, e.g. with :func:`mstt.decode.best_permutation`) and
return one value per row, in dB.

Transcription scores follow docs/design.md: ``frame`` as ``mir_eval.multipitch`` on a grid at
the STFT frame rate (reference frames only from notes of velocity >= 30, as MT3 does for
Cerberus), ``onset`` as ``mir_eval.transcription`` with a 50 ms onset tolerance and offsets
ignored, ``onset_offset`` with mir_eval's defaults (offset within 20 % of the note or 50 ms).

Empty notes. mir_eval warns and returns 0 whenever the reference or the estimate is empty. Here,
per level: when both are empty (nothing to find and nothing found, e.g. an instrument absent
from a track and correctly left silent), precision, recall and F1 are NaN, meaning "not scored",
so that a mean over examples taken with ``nanmean`` skips the pair instead of rewarding it with
1.0 or punishing it with 0. When only one side is empty, all three are 0.0, as in mir_eval
(missed notes or false alarms are real errors), without its warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import mir_eval
import numpy as np
import torch
from torchmetrics.functional.audio import (
    scale_invariant_signal_distortion_ratio,
    signal_distortion_ratio,
)

from mstt import hookimpl
from mstt.features.rolls import LOWEST_KEY, MIN_VELOCITY, notes_to_roll

SeparationFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
TranscriptionFn = Callable[..., dict[str, dict[str, float]]]

BSS_EVAL = "bss_eval"  # also what the recipe's eval.bss_eval switch adds to eval.metrics

# mir_eval rejects notes of zero duration (drum hits often have one); they get this length.
MIN_NOTE_SECONDS = 1e-3


def _check_pair(estimate: torch.Tensor, reference: torch.Tensor) -> None:
    """Both waveforms must be ``(n, samples)`` of the same shape."""
    if estimate.dim() != 2 or estimate.shape != reference.shape:
        raise ValueError(
            f"estimate and reference must both be (n, samples); "
            f"got {tuple(estimate.shape)} and {tuple(reference.shape)}"
        )


def _precise(x: torch.Tensor) -> torch.Tensor:
    """Float64 where the device has it: SI-SDR of near-perfect estimates needs the precision."""
    return x.float() if x.device.type == "mps" else x.double()


@dataclass
class SiSdrOptions:
    """Options of the ``si_sdr`` metric."""

    zero_mean: bool = True  # remove each signal's mean first (asteroid's convention)


def si_sdr_metric(options: SiSdrOptions) -> SeparationFn:
    """Scale-invariant SDR in dB (torchmetrics), one value per row; fast and batched."""

    def si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> dict[str, torch.Tensor]:
        """Estimate, reference ``(n, samples)`` -> ``{"si_sdr": (n,)}``."""
        _check_pair(estimate, reference)
        value = scale_invariant_signal_distortion_ratio(
            _precise(estimate), _precise(reference), zero_mean=options.zero_mean
        )
        return {"si_sdr": value}

    return si_sdr


@dataclass
class SdrOptions:
    """Options of the ``sdr`` metric (torchmetrics' ``signal_distortion_ratio``)."""

    filter_length: int = 512  # taps of the distortion filter, as mir_eval's flen
    zero_mean: bool = False
    use_cg_iter: int | None = None  # conjugate-gradient iterations instead of a direct solve
    load_diag: float | None = None  # diagonal loading that steadies the solve on near-silence


def sdr_metric(options: SdrOptions) -> SeparationFn:
    """SDR in dB, BSS-Eval style with a 512-tap distortion filter (torchmetrics), one value per row.

    Like mir_eval's ``bss_eval_sources`` SDR, the reference is allowed a time-invariant FIR
    distortion of ``filter_length`` taps before the error is measured, and the value depends
    only on the row's own reference, so in float64 the two agree to numerical precision. It
    differs in what it leaves out: it scores row by row (no SIR or SAR, no search over
    permutations, so pair rows first) and is one to two orders of magnitude faster. Neither
    windows the signal as museval's BSS-Eval v4 does (1 s frames, median over frames), so
    neither equals museval's SDR on signals whose quality varies over time.
    """

    def sdr(estimate: torch.Tensor, reference: torch.Tensor) -> dict[str, torch.Tensor]:
        """Estimate, reference ``(n, samples)`` -> ``{"sdr": (n,)}``."""
        _check_pair(estimate, reference)
        value = signal_distortion_ratio(
            _precise(estimate),
            _precise(reference),
            use_cg_iter=options.use_cg_iter,
            filter_length=options.filter_length,
            zero_mean=options.zero_mean,
            load_diag=options.load_diag,
        )
        return {"sdr": value}

    return sdr


@dataclass
class BssEvalOptions:
    """Options of the ``bss_eval`` metric."""

    compute_permutation: bool = False  # the evaluator pairs sources before scoring


def _silent(x: np.ndarray) -> np.ndarray:
    """Rows of ``(n, samples)`` that are all zeros."""
    return ~np.any(x != 0, axis=1)


def bss_eval_metric(options: BssEvalOptions) -> SeparationFn:
    """SDR, SIR and SAR from mir_eval's ``bss_eval_sources``; slow (seconds per example), opt-in.

    Unlike the other separation metrics, the rows of one call must be the sources of ONE
    example: SIR and SAR measure each estimate against all the references given together.
    mir_eval refuses an all-zero reference or estimate; those rows come back NaN and the
    others are scored among themselves (NaN everywhere when fewer than one row remains).
    """

    def bss_eval(estimate: torch.Tensor, reference: torch.Tensor) -> dict[str, torch.Tensor]:
        """Estimate, reference ``(sources, samples)`` of one example -> ``{"sdr", "sir", "sar"}`` each ``(sources,)``."""
        _check_pair(estimate, reference)
        est = estimate.detach().cpu().double().numpy()
        ref = reference.detach().cpu().double().numpy()
        out = {key: np.full(est.shape[0], np.nan) for key in ("sdr", "sir", "sar")}
        keep = ~(_silent(est) | _silent(ref))
        if keep.any():
            with warnings.catch_warnings():
                # bss_eval_sources is deprecated in mir_eval 0.8 in favour of museval; it is still
                # the reference implementation the paper's numbers come from.
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(
                    ref[keep], est[keep], compute_permutation=options.compute_permutation
                )
            out["sdr"][keep], out["sir"][keep], out["sar"][keep] = sdr, sir, sar
        return {key: torch.from_numpy(value).to(estimate.device) for key, value in out.items()}

    return bss_eval


@dataclass
class TranscriptionOptions:
    """Options of the ``transcription`` metric (defaults: docs/design.md, metrics.json)."""

    onset_tolerance: float = 0.05  # seconds
    offset_ratio: float = 0.2  # of the reference note's duration, for onset_offset
    offset_min_tolerance: float = 0.05  # seconds, for onset_offset
    pitch_tolerance: float = 50.0  # cents
    frame_min_velocity: float = float(MIN_VELOCITY)  # reference notes quieter than this are left out of frames


def _prf(precision: float, recall: float, f1: float) -> dict[str, float]:
    """A precision/recall/F1 block of plain floats."""
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def _empty_score(n_reference: int, n_estimate: int) -> dict[str, float] | None:
    """The module's convention when a side is empty (see the module docstring); None otherwise."""
    if n_reference == 0 and n_estimate == 0:
        return _prf(np.nan, np.nan, np.nan)
    if n_reference == 0 or n_estimate == 0:
        return _prf(0.0, 0.0, 0.0)
    return None


def _as_notes(notes: np.ndarray) -> np.ndarray:
    """Notes ``(n, 4)`` float64 with non-negative onsets and strictly positive durations."""
    notes = np.array(notes, dtype=np.float64).reshape(-1, 4)
    notes[:, 0] = np.maximum(notes[:, 0], 0.0)
    notes[:, 1] = np.maximum(notes[:, 1], notes[:, 0] + MIN_NOTE_SECONDS)
    return notes


def _roll_to_freqs(roll: np.ndarray) -> list[np.ndarray]:
    """Binary roll ``(88, frames)`` -> per frame, the active pitches in Hz (mir_eval multipitch)."""
    hz = mir_eval.util.midi_to_hz(np.arange(LOWEST_KEY, LOWEST_KEY + roll.shape[0]))
    return [hz[np.flatnonzero(column)] for column in roll.T]


def _frame_scores(reference: np.ndarray, estimate: np.ndarray, frame_rate: float, min_velocity: float) -> dict[str, float]:
    """Frame-level precision/recall/F1 with mir_eval.multipitch on one grid at ``frame_rate``."""
    end = max([reference[:, 1].max(initial=0.0), estimate[:, 1].max(initial=0.0)])
    frames = int(np.ceil(end * frame_rate)) + 1
    ref_roll = notes_to_roll(reference, frames, frame_rate, min_velocity=min_velocity)
    est_roll = notes_to_roll(estimate, frames, frame_rate)
    empty = _empty_score(int(ref_roll.sum()), int(est_roll.sum()))
    if empty is not None:
        return empty
    times = np.arange(frames) / frame_rate
    scores = mir_eval.multipitch.evaluate(times, _roll_to_freqs(ref_roll), times, _roll_to_freqs(est_roll))
    p, r = scores["Precision"], scores["Recall"]
    return _prf(p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0)


def _note_scores(reference: np.ndarray, estimate: np.ndarray, options: TranscriptionOptions, offsets: bool) -> dict[str, float]:
    """Note-level precision/recall/F1 with mir_eval.transcription, with or without offsets."""
    empty = _empty_score(len(reference), len(estimate))
    if empty is not None:
        return empty
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        reference[:, :2],
        mir_eval.util.midi_to_hz(reference[:, 2]),
        estimate[:, :2],
        mir_eval.util.midi_to_hz(estimate[:, 2]),
        onset_tolerance=options.onset_tolerance,
        pitch_tolerance=options.pitch_tolerance,
        offset_ratio=options.offset_ratio if offsets else None,
        offset_min_tolerance=options.offset_min_tolerance,
    )
    return _prf(p, r, f)


def transcription_metric(options: TranscriptionOptions) -> TranscriptionFn:
    """Frame, note-onset and note-onset-offset precision/recall/F1 (mir_eval); drums: no onset_offset."""

    def transcription(
        reference_notes: np.ndarray, estimated_notes: np.ndarray, frame_rate: float, is_drum: bool = False
    ) -> dict[str, dict[str, float]]:
        """Notes ``(n, 4)`` = [onset_s, offset_s, midi_pitch, velocity] -> ``{"frame", "onset"[, "onset_offset"]}``."""
        reference, estimate = _as_notes(reference_notes), _as_notes(estimated_notes)
        result = {
            "frame": _frame_scores(reference, estimate, frame_rate, options.frame_min_velocity),
            "onset": _note_scores(reference, estimate, options, offsets=False),
        }
        if not is_drum:  # a drum hit has no meaningful offset
            result["onset_offset"] = _note_scores(reference, estimate, options, offsets=True)
        return result

    return transcription


@hookimpl
def mstt_register_metrics(register: Callable[..., None]) -> None:
    """Register the built-in separation and transcription metrics."""
    register("si_sdr", si_sdr_metric, task="separation", options=SiSdrOptions, mixture_baseline=True)
    register("sdr", sdr_metric, task="separation", options=SdrOptions)
    register(BSS_EVAL, bss_eval_metric, task="separation", options=BssEvalOptions, per_example=True)
    register("transcription", transcription_metric, task="transcription", options=TranscriptionOptions)
