"""One experiment end to end: data -> model -> train -> evaluate best.pt -> metrics.json and report.md.

``run_experiment`` is what ``mstt run`` does after the recipe is loaded. Re-running it on the
same folder resumes training from ``checkpoints/last.pt``; a run whose training had finished
only re-evaluates ``best.pt`` (the trainer returns at once).

Ctrl-C during training: the trainer saves ``last.pt`` and returns; this function then does NOT
evaluate and returns 130. An interrupt means "stop now", the evaluation of a half-trained model
would be mistaken for the run's result, and running the same command again resumes training
and evaluates when it ends.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import soundfile as sf
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import Dataset, Subset

from mstt.data.augment import RemixAugmented
from mstt.data.base import DatasetAdapter
from mstt.errors import MsttError
from mstt.evaluate import run_evaluation, write_metrics
from mstt.evaluate.core import spread_indices
from mstt.fileio import write_error
from mstt.plugins import get_registry
from mstt.recipe import component_options
from mstt.report import write_report
from mstt.report.tables import SEPARATION_COLUMNS
from mstt.runlock import folder_lock

if TYPE_CHECKING:
    from mstt.train.trainer import StepHook

VALIDATION_WINDOWS = 64  # validation examples at most: a stable mean loss without a long pause
INTERRUPTED = 130  # the shell's exit status for SIGINT


def build_adapter(
    config: DictConfig, kind: str | None = None, root: str | None = None, overrides: dict[str, Any] | None = None
) -> DatasetAdapter:
    """The recipe's dataset adapter (or ``kind`` at ``root``), its options validated by its schema.

    Another kind than the recipe's starts from its default options, since the recipe's belong to
    its own kind; ``overrides`` (e.g. from ``mstt eval --data-option``) are merged on top.
    """
    data = config.data
    kind = kind or data.kind
    if root is None and kind == data.kind:
        root = data.root
    component = get_registry().get("datasets", kind, where="data.kind")
    base = OmegaConf.create(OmegaConf.to_container(data.options, resolve=True) if kind == data.kind else {})
    given = OmegaConf.merge(base, overrides or {})
    options = component_options(component.options, given, "data.options")
    return component.factory(root, list(data.sources), int(data.sample_rate), options)


def training_sets(config: DictConfig, adapter: DatasetAdapter) -> tuple[Dataset, Dataset]:
    """Random training crops, and at most :data:`VALIDATION_WINDOWS` fixed validation windows of crop length."""
    hop = int(config.features.hop_length)
    crop = float(config.data.crop_seconds)
    train_set: Dataset = adapter.training_dataset("train", crop, hop, int(config.trainer.seed))
    if config.data.gain_augment_db > 0 or config.data.eq_augment_db > 0:
        train_set = RemixAugmented(train_set, float(config.data.gain_augment_db), int(config.trainer.seed),
                                   eq_db=float(config.data.eq_augment_db), sample_rate=int(config.data.sample_rate))
    windows = adapter.evaluation_dataset("validation", hop, crop)
    # Spread over the split, so that a cap still sees every part of it (not only its first tracks).
    val_set = Subset(windows, spread_indices(len(windows), VALIDATION_WINDOWS))
    return train_set, val_set


def skipped_tracks(adapter: DatasetAdapter, split: str) -> list[dict[str, str]]:
    """The tracks of ``split`` that the adapter could not use, as ``{"path", "reason"}`` (plugin adapters: none known)."""
    skipped_in = getattr(adapter, "skipped_in", None)
    return list(skipped_in(split)) if callable(skipped_in) else []


def skipped_line(skipped: list[dict[str, str]], split: str, used: int) -> str:
    """'skipped 2 of 8 tracks of split test (1 bad metadata.yaml, 1 missing stem audio)'."""
    kinds: dict[str, int] = {}
    for entry in skipped:
        kind = entry["reason"].partition(": ")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    why = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    return f"skipped {len(skipped)} of {len(skipped) + used} tracks of split {split} ({why})"


def evaluate_checkpoint(
    config: DictConfig,
    model: nn.Module,
    checkpoint_path: Path,
    adapter: DatasetAdapter,
    out: Path,
    history_csvs: dict[str, Path],
    device: torch.device,
    progress: bool = True,
    strict: bool = False,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``eval.split`` of ``adapter``; write ``out/metrics.json`` and ``out/report.md``.

    Tracks of the split that the adapter skipped are said (count and reasons) and listed in both
    files; with ``strict`` any of them is an error, raised before the model runs.
    """
    split = str(config.eval.split)
    dataset = adapter.evaluation_dataset(split, int(config.features.hop_length), config.data.eval_segment_seconds)
    skipped = skipped_tracks(adapter, split)  # after evaluation_dataset: it drops tracks that fail to decode
    if skipped:
        line = skipped_line(skipped, split, len(adapter.tracks(split)))
        if strict:
            first = skipped[0]
            raise MsttError(f"{line}, e.g. {first['path']}: {first['reason']}; fix or remove them, or drop --strict")
        print(f"{line}; metrics.json and report.md list them")
    result = run_evaluation(model, dataset, config, device=device, progress=progress, checkpoint=checkpoint_path)
    result.metrics["skipped"] = skipped
    write_metrics(out / "metrics.json", result.metrics)
    try:
        write_report(out, result.metrics, history_csvs, result.examples, result.notes)
    except (OSError, sf.SoundFileRuntimeError) as exc:  # figures and example audio: full disk, permissions
        raise write_error(getattr(exc, "filename", None) or out / "report", exc) from None
    for note in result.notes:
        print(f"note: {note}")
    return result.metrics


def _fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}" if unit else f"{value:.3f}"


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """One line per source (and the mean): separation in dB, transcription F1."""
    separation = metrics.get("separation", {})
    transcription = metrics.get("transcription", {})
    names = list(dict.fromkeys([*separation, *transcription]))
    names = [n for n in names if n != "mean"] + (["mean"] if "mean" in names else [])
    width = max((len(n) for n in names), default=4)
    labels = dict(SEPARATION_COLUMNS)
    lines = []
    for name in names:
        parts = []
        if name in separation:
            parts.append(", ".join(f"{labels.get(k, k)} {_fmt(v, ' dB')}" for k, v in separation[name].items()))
        if name in transcription:
            parts.append(
                ", ".join(f"{level.replace('_', '/')} F1 {_fmt(block.get('f1'))}" for level, block in transcription[name].items())
            )
        lines.append(f"{name:<{width}}  " + " | ".join(parts))
    return lines


def _rank() -> int:
    """This process's data-parallel rank (torchrun sets RANK); 0 alone."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def run_experiment(config: DictConfig, out: Path, progress: bool = True, on_step: StepHook | None = None) -> int:
    """Train the recipe into ``out``, evaluate its best checkpoint and write the report; 0, or 130 when interrupted.

    ``out`` is locked for the whole run: a second process on it is refused before it does anything.
    ``on_step(step, seconds)`` is handed to the trainer (``mstt bench``'s guard; see ``mstt.train.trainer.StepHook``).
    """
    out = Path(out)
    if _rank() != 0:
        # The ranks of one torchrun job share the folder; rank 0 holds its lock for all of them.
        return _train_and_evaluate(config, out, progress, on_step)
    with folder_lock(out, "mstt run"):
        return _train_and_evaluate(config, out, progress, on_step)


def _train_and_evaluate(config: DictConfig, out: Path, progress: bool, on_step: StepHook | None = None) -> int:
    """The body of :func:`run_experiment`, run while the folder is locked."""
    from mstt.checkpoints import model_from_checkpoint
    from mstt.devices import resolve_device
    from mstt.nn.build import build_model
    from mstt.train import seed_everything, train

    adapter = build_adapter(config)
    train_set, val_set = training_sets(config, adapter)
    seed_everything(int(config.trainer.seed))  # before build: initial weights follow the seed
    model = build_model(config)
    result = train(config, model, train_set, val_set, out, progress=progress, on_step=on_step)
    if _rank() != 0:
        return 0  # only rank 0 evaluates and writes; the others are done when training is
    if result.stopped == "interrupted":
        print(f"interrupted at step {result.step}; run the same command again to resume, then evaluate")
        return INTERRUPTED
    checkpoint_path = result.best_path if result.best_path.is_file() else result.last_path
    if not checkpoint_path.is_file():
        raise MsttError(f"{out}: training wrote no checkpoint to evaluate")
    print(f"training stopped ({result.stopped}) at step {result.step}; evaluating {checkpoint_path}")
    model, _, _ = model_from_checkpoint(checkpoint_path, config)  # the recipe it trained with
    logs = {"train": out / "logs" / "train.csv", "validation": out / "logs" / "validation.csv"}
    metrics = evaluate_checkpoint(
        config, model, checkpoint_path, adapter, out, logs, resolve_device(config.trainer.device), progress
    )
    for line in summary_lines(metrics):
        print(line)
    print(f"wrote {out / 'metrics.json'} and {out / 'report.md'}")
    return 0
