"""The shared evaluation: one code path for every model kind -> the metrics.json dict.

Separation (when the model yields stems, see :mod:`mstt.evaluate.inference`): every metric of
``eval.metrics`` registered with ``task="separation"`` is computed on all (example, source)
rows of a batch at once, on the model's device; ``si_sdri`` = SI-SDR(estimate) - SI-SDR(mixture)
against the same reference. SIR and SAR come from ``bss_eval`` (mir_eval, per example, slow)
only when ``eval.bss_eval`` is true or ``bss_eval`` is listed (the metrics' registered info says
which has a mixture baseline and which is per example). A reference source whose peak is below
:data:`mstt.constants.SILENT_REFERENCE_PEAK` has no meaningful SDR; its row is left out of the
averages and the evaluation says so (:attr:`EvaluationResult.notes`). A source that sounds
alone in its window (everything else in the mixture below that peak) has the mixture as a
perfect estimate: its SI-SDR is scored, its improvement over the mixture (``si_sdri``) is not,
since the mixture's SI-SDR there is bounded only by float precision (~+140 dB).

Transcription (when the model has a ``roll`` output): sigmoid roll -> notes per source with
``eval.note_threshold``, ``eval.note_hold_threshold`` and ``eval.min_note_frames`` (a head
registered with ``decode``, such as the onset plugin's, decodes instead; see
:func:`mstt.decode.notes_from_outputs`, which separation uses too) -> the ``transcription``
metric against the example's reference notes at the STFT frame rate ``sample_rate / hop_length``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from mstt.constants import SILENT_REFERENCE_PEAK
from mstt.data.classes import DEFAULT_CLASSES, is_instrument
from mstt.decode import NoteDecoding, note_decoder, notes_from_outputs, roll_to_notes
from mstt.errors import MsttError
from mstt.evaluate.inference import Estimates, infer
from mstt.evaluate.scores import ScoreBook
from mstt.features import STFT
from mstt.metrics import BSS_EVAL
from mstt.plugins import get_registry

REPORT_SECONDS = 10.0  # report examples keep at most this much of their window
KEY_ORDER = ("si_sdr", "si_sdri", "sdr", "sir", "sar")  # separation keys in metrics.json; any others follow


@dataclass
class ReportExample:
    """Arrays of one evaluated example for the report, cut to its first :data:`REPORT_SECONDS`."""

    track: str
    start: float  # seconds into the track
    sample_rate: int
    hop_length: int
    sources: list[str]
    mixture: np.ndarray  # (samples,)
    references: np.ndarray  # (S, samples)
    magnitude: np.ndarray  # mixture magnitude (freq, frames)
    ref_masks: np.ndarray  # ideal ratio masks |S_i| / sum_j |S_j| (S, freq, frames)
    estimates: np.ndarray | None = None  # (S, samples)
    est_masks: np.ndarray | None = None  # (S, freq, frames)
    est_roll: np.ndarray | None = None  # probabilities (S, 88, frames)
    ref_roll: np.ndarray | None = None  # binary (S, 88, frames)


@dataclass
class EvaluationResult:
    """The metrics.json dict, a few examples' arrays for the report, and notes on what was skipped."""

    metrics: dict[str, Any]
    examples: list[ReportExample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _identity(item: Any) -> Any:
    """DataLoader collate that leaves an item alone (note lists must stay numpy)."""
    return item


def spread_indices(n: int, k: int | None) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when k is None or >= n)."""
    if k is None or k >= n:
        return list(range(n))
    if k <= 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, k)})


@dataclass
class _Metrics:
    """The metrics of ``eval.metrics`` grouped by how the evaluation calls them (their registered info)."""

    rows: dict[str, Callable] = field(default_factory=dict)  # separation, on every audible (example, source) row at once
    baseline: set[str] = field(default_factory=set)  # of ``rows``: registered mixture_baseline=True
    examples: dict[str, Callable] = field(default_factory=dict)  # separation, registered per_example=True
    transcription: Callable | None = None  # the first transcription metric


def _build_metrics(config: DictConfig) -> _Metrics:
    """The metric functions of ``eval.metrics`` (plus ``bss_eval`` when ``eval.bss_eval`` is set)."""
    registry = get_registry()
    metrics = _Metrics()
    names = list(config.eval.metrics) + ([BSS_EVAL] if config.eval.bss_eval else [])
    for name in dict.fromkeys(names):
        component = registry.get("metrics", name, where="eval.metrics")
        fn = component.factory(component.options() if component.options is not None else None)
        if component.info["task"] != "separation":
            metrics.transcription = metrics.transcription or fn
        elif component.info.get("per_example", False):
            metrics.examples[name] = fn
        else:
            metrics.rows[name] = fn
            if component.info.get("mixture_baseline", False):
                metrics.baseline.add(name)
    return metrics


def _rows(fn: Callable, estimate: torch.Tensor, reference: torch.Tensor) -> tuple[dict[str, torch.Tensor], int]:
    """A separation metric on rows ``(n, samples)`` -> (values ``{key: (n,)}``, rows that failed).

    When the batched call fails (e.g. SDR's solver on a nearly silent reference), the rows are
    scored one by one and those that still fail are NaN (left out of the averages, and counted).
    """
    try:
        return fn(estimate, reference), 0
    except RuntimeError:
        pass
    n = estimate.shape[0]
    results: dict[str, torch.Tensor] = {}
    failed = 0
    for i in range(n):
        try:
            scored = fn(estimate[i : i + 1], reference[i : i + 1])
        except RuntimeError:
            failed += 1
            continue
        for key, value in scored.items():
            if key not in results:
                results[key] = torch.full((n,), float("nan"), dtype=torch.float64, device=estimate.device)
            results[key][i] = value.reshape(()).double()
    if not results:
        fn(estimate[:1], reference[:1])  # every row failed: let the metric's own error say why
    return results, failed


def _batches(loader: DataLoader, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Consecutive items grouped into lists of equal length (windows of one size batch together)."""
    pending: list[dict[str, Any]] = []
    for item in loader:
        if pending and (len(pending) >= batch_size or item["mixture"].shape != pending[0]["mixture"].shape):
            yield pending
            pending = []
        pending.append(item)
    if pending:
        yield pending


class _Evaluator:
    """State of one evaluation run; :func:`run_evaluation` is its public face."""

    def __init__(self, model: nn.Module, config: DictConfig, device: torch.device, chunk_seconds: float) -> None:
        self.model, self.config, self.device = model, config, device
        self.sources = list(model.sources)
        self.sample_rate = int(model.sample_rate)
        self.hop = int(config.features.hop_length)
        self.frame_rate = self.sample_rate / self.hop
        self.chunk = int(round(chunk_seconds * self.sample_rate))
        self.metrics = _build_metrics(config)
        self.transcription = self.metrics.transcription
        self.decoder = note_decoder(model)
        self.decoding = NoteDecoding.from_config(config)
        self.book = ScoreBook(self.sources)
        self.failed: dict[str, int] = {}  # metric -> (example, source) rows it could not score
        self.examples: list[ReportExample] = []
        f = config.features
        self.stft = STFT(int(f.n_fft), self.hop, f.window)
        self.report_seconds = REPORT_SECONDS

    def drums(self, dataset: Dataset) -> set[str]:
        """Sources without offsets: the adapter's drum classes (the default classes otherwise)."""
        classes = getattr(getattr(dataset, "adapter", None), "classes", None) or DEFAULT_CLASSES
        return {s for s in self.sources if getattr(classes.get(s), "is_drum", False)}

    def batch(self, items: list[dict[str, Any]], keep: list[bool], drums: set[str]) -> None:
        """Score one batch of equally long items; keep the arrays of those flagged in ``keep``."""
        mixture = torch.stack([torch.as_tensor(i["mixture"]) for i in items]).float().to(self.device)  # (B, N)
        references = torch.stack([torch.as_tensor(i["sources"]) for i in items]).float().to(self.device)  # (B, S, N)
        if references.shape[1] != len(self.sources):
            raise MsttError(
                f"the dataset gives {references.shape[1]} sources but the model separates "
                f"{len(self.sources)} ({', '.join(self.sources)}); evaluate with the model's sources"
            )
        keep_samples = min(mixture.shape[-1], int(round(self.report_seconds * self.sample_rate)))
        keep_frames = 1 + keep_samples // self.hop if any(keep) else 0
        est = infer(self.model, mixture, references, self.hop, self.chunk, keep_frames)
        if est.stems is not None:
            self.score_separation(est.stems, mixture, references)
        if est.roll is not None and self.transcription is not None:
            self.score_transcription(est, items, drums)
        for b, flag in enumerate(keep):
            if flag:
                self.examples.append(self.report_example(items[b], est, b, keep_samples, keep_frames))

    def score_separation(self, stems: torch.Tensor, mixture: torch.Tensor, references: torch.Tensor) -> None:
        """Stems, references ``(B, S, N)`` and mixture ``(B, N)`` -> per-row metrics into the score book."""
        # A silent reference makes SI-SDR and SDR undefined (and SDR's solver singular): such rows
        # are not scored at all, and count as NaN in the book.
        silent = references.abs().amax(-1) < SILENT_REFERENCE_PEAK  # (B, S)
        # Alone: the rest of the mixture is silent, so the mixture is the reference and no
        # estimate can improve on it; SI-SDRi there would be ~ -140 dB and swamp a mean.
        alone = ((mixture.unsqueeze(1) - references).abs().amax(-1) < SILENT_REFERENCE_PEAK) & ~silent
        values = self.row_scores(stems, mixture, references, silent, alone)
        for fn in self.metrics.examples.values():
            scored = [fn(stems[b], references[b]) for b in range(references.shape[0])]
            # A key a row metric gave already is kept: bss_eval's SDR equals the torchmetrics one
            # (see mstt.metrics), so it adds only SIR and SAR when sdr is scored.
            for key in scored[0]:
                if key not in values:
                    values[key] = torch.stack([r[key] for r in scored]).to(references.device)
        ordered = {k: values[k] for k in KEY_ORDER if k in values} | {k: v for k, v in values.items() if k not in KEY_ORDER}
        if ordered:
            self.book.add_separation(ordered, silent, alone)

    def row_scores(
        self, stems: torch.Tensor, mixture: torch.Tensor, references: torch.Tensor, silent: torch.Tensor,
        alone: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The row metrics on every audible (example, source) row -> ``{key: (B, S)}``, NaN where silent.

        A metric registered with ``mixture_baseline`` also scores the mixture as the estimate:
        key ``k`` gives ``k + "i"`` = k(estimate) - k(mixture), e.g. SI-SDRi from SI-SDR; NaN
        where ``alone`` ``(B, S)`` marks a source that is the whole mixture.
        """
        batch, n_sources, samples = references.shape
        audible = ~silent.reshape(-1)
        if not bool(audible.any()):
            return {}
        est_rows = stems.reshape(-1, samples)[audible]
        ref_rows = references.reshape(-1, samples)[audible]
        mix_rows = mixture.unsqueeze(1).expand(batch, n_sources, samples).reshape(-1, samples)[audible]

        def scatter(value: torch.Tensor) -> torch.Tensor:
            full = torch.full((batch * n_sources,), float("nan"), dtype=torch.float64, device=value.device)
            full[audible.to(value.device)] = value.double()
            return full.reshape(batch, n_sources)

        values: dict[str, torch.Tensor] = {}
        for name, fn in self.metrics.rows.items():
            scored, failed = _rows(fn, est_rows, ref_rows)
            self.failed[name] = self.failed.get(name, 0) + failed
            for key, value in scored.items():
                values[key] = scatter(value)
            if name in self.metrics.baseline:
                baseline = _rows(fn, mix_rows, ref_rows)[0]
                for key in scored:
                    improvement = values[key] - scatter(baseline[key])
                    values[f"{key}i"] = improvement.masked_fill(alone.to(improvement.device), float("nan"))
        return values

    def score_transcription(self, est: Estimates, items: list[dict[str, Any]], drums: set[str]) -> None:
        """Sigmoid rolls -> notes per source -> transcription scores against each item's notes."""
        roll = est.roll.detach().cpu()  # (B, S, 88, T)
        extra = {name: value.detach().cpu() for name, value in est.extra.items()}  # once a batch, not per item
        for b, item in enumerate(items):
            outputs = {name: value[b] for name, value in extra.items()}
            estimated = notes_from_outputs(roll[b], outputs, self.frame_rate, self.decoding, self.decoder)
            references = item.get("notes")
            if references is None:
                # No note list: read the reference roll as notes (exact on the frame grid).
                references = [roll_to_notes(r, self.frame_rate, 0.5, 1) for r in torch.as_tensor(item["roll"])]
            for s, source in enumerate(self.sources):
                if not is_instrument(source):
                    continue  # OTHER is separated only: its rolls are trained to silence
                scores = self.transcription(references[s], estimated[s], self.frame_rate, is_drum=source in drums)
                self.book.add_transcription(source, scores)
            self.book.count_transcription()

    def report_example(
        self, item: dict[str, Any], est: Estimates, b: int, samples: int, frames: int
    ) -> ReportExample:
        """The arrays of batch item ``b``, cut to ``samples`` samples and ``frames`` frames."""
        references = torch.as_tensor(item["sources"])[:, :samples].float().cpu()  # (S, n)
        mixture = torch.as_tensor(item["mixture"])[:samples].float().cpu()
        ref_mags = self.stft(references).abs()  # (S, F, T)
        ref_masks = ref_mags / ref_mags.sum(0, keepdim=True).clamp_min(1e-8)
        example = ReportExample(
            track=str(item.get("track", "")),
            start=float(item.get("start", 0.0)),
            sample_rate=self.sample_rate,
            hop_length=self.hop,
            sources=self.sources,
            mixture=mixture.numpy(),
            references=references.numpy(),
            magnitude=self.stft(mixture).abs().numpy(),
            ref_masks=ref_masks.numpy(),
        )
        if est.stems is not None:
            stems = est.stems[b, :, :samples].float().cpu()
            example.estimates = stems.numpy()
            if est.masks is not None:
                example.est_masks = est.masks[b, ..., :frames].cpu().numpy()
            else:  # a waveform separator has no masks: show the ratio masks of its stems
                mags = self.stft(stems).abs()
                example.est_masks = (mags / mags.sum(0, keepdim=True).clamp_min(1e-8)).numpy()
        if est.roll is not None:
            example.est_roll = est.roll[b, ..., :frames].cpu().numpy()
            example.ref_roll = torch.as_tensor(item["roll"])[..., :frames].float().numpy()
        return example

    def result(self, checkpoint: str | Path | None, n_examples: int) -> EvaluationResult:
        """The finished run as ``metrics.json``'s content, the kept report examples and the notes
        (what the score book left out, and the rows a metric failed on)."""
        config = self.config
        metrics: dict[str, Any] = {
            "recipe": str(config.name),
            "checkpoint": str(checkpoint) if checkpoint is not None else None,
            "split": str(config.eval.split),
            "n_examples": n_examples,
        }
        separation = self.book.separation_block()
        if separation is not None:
            metrics["separation"] = separation
        transcription = self.book.transcription_block()
        if transcription is not None:
            metrics["transcription"] = transcription
        notes = self.book.notes() + [
            f"{name}: {count} (example, source) pairs could not be scored (the metric failed on them); left out"
            for name, count in self.failed.items()
            if count
        ]
        return EvaluationResult(metrics, self.examples, notes)


def default_device() -> torch.device:
    """CUDA when a GPU is visible, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_evaluation(
    model: nn.Module,
    dataset: Dataset,
    config: DictConfig,
    device: str | torch.device | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    chunk_seconds: float | None = None,
) -> EvaluationResult:
    """Evaluate ``model`` on ``dataset`` (items as :class:`mstt.data.base.Example`, with notes).

    Uses ``eval.max_examples`` windows spread evenly over the dataset (all when None) and keeps
    ``eval.report_examples`` of them, also spread, for the report.
    """
    device = torch.device(device) if device is not None else default_device()
    chunk_seconds = chunk_seconds or float(config.eval.chunk_seconds)
    evaluator = _Evaluator(model, config, device, chunk_seconds)
    adapter_sources = getattr(getattr(dataset, "adapter", None), "sources", None)
    if adapter_sources is not None and list(adapter_sources) != evaluator.sources:
        raise MsttError(
            f"the dataset's sources {list(adapter_sources)} differ from the model's {evaluator.sources}; "
            f"evaluate on data with the sources the model was trained on"
        )
    indices = spread_indices(len(dataset), config.eval.max_examples)
    if not indices:
        raise MsttError(f"split '{config.eval.split}' holds no examples to evaluate")
    report_at = {indices[i] for i in spread_indices(len(indices), int(config.eval.report_examples))}
    drums = evaluator.drums(dataset)
    workers = int(config.trainer.num_workers)
    loader = DataLoader(Subset(dataset, indices), batch_size=None, collate_fn=_identity, num_workers=workers)
    was_training = model.training
    model.to(device).eval()
    position = 0
    try:
        with torch.inference_mode(), tqdm(
            total=len(indices), unit="example", desc="eval", disable=not progress, dynamic_ncols=True
        ) as bar:
            for items in _batches(loader, int(config.eval.batch_size)):
                keep = [indices[position + k] in report_at for k in range(len(items))]
                evaluator.batch(items, keep, drums)
                position += len(items)
                bar.update(len(items))
    finally:
        model.train(was_training)
    return evaluator.result(checkpoint, len(indices))

