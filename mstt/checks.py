"""Recipe validation: one pass over every section, for every recipe kind, run by ``build_model``.

The schema (:mod:`mstt.recipe`) checks keys, types and float ranges when a recipe is loaded;
this pass checks what needs the registry or several fields: component names and options,
sources, sizes, the optimiser and its schedule, the trainer and the evaluation. ``build_model``
runs it, so ``mstt run --dry-run`` refuses a recipe that training would refuse; the trainer and
the optimiser code only assert what it checked.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from mstt.errors import RecipeError
from mstt.recipe import active_heads, component_options
from mstt.registry import Registry
from mstt.schema import OPTIMIZERS, SCHEDULES, SEPARATOR_HEAD, CosineOptions, HeadConfig, PlateauOptions, StepOptions

PRECISIONS = ("auto", "bf16", "fp32")
MONITOR_MODES = ("min", "max")


def validate_recipe(config: DictConfig, registry: Registry) -> None:
    """Check what the schema cannot, in every section of a heads or a separator recipe."""
    check_data(config, registry)
    check_model(config, registry)
    check_optim(config)
    check_trainer(config)
    check_eval(config, registry)


def check_data(config: DictConfig, registry: Registry) -> None:
    """Sources, rates, crops, augmentation, STFT sizes and the dataset adapter's options."""
    sources = list(config.data.sources)
    if not sources:
        raise RecipeError("data.sources: name at least one source, e.g. [piano, guitar]")
    if len(set(sources)) != len(sources):
        raise RecipeError(f"data.sources: {sources} names a source twice")
    if config.data.sample_rate <= 0:
        raise RecipeError("data.sample_rate: must be positive, e.g. 16000")
    if config.data.crop_seconds <= 0:
        raise RecipeError("data.crop_seconds: must be positive, e.g. 2.0")
    for key in ("gain_augment_db", "eq_augment_db"):
        if config.data[key] < 0:
            raise RecipeError(f"data.{key}: {config.data[key]} is negative; use 0 (off) or e.g. 6")
    if config.features.hop_length <= 0 or config.features.n_fft < config.features.hop_length:
        raise RecipeError("features: need 0 < hop_length <= n_fft, e.g. n_fft=1024 hop_length=256")
    dataset = registry.get("datasets", config.data.kind, where="data.kind")
    component_options(dataset.options, config.data.options, "data.options")


def check_model(config: DictConfig, registry: Registry) -> None:
    """The encoder, head weights, and either the active heads or the separator exist."""
    registry.get("encoders", config.model.encoder.name, where="model.encoder.name")
    for key, head in config.model.heads.items():
        if head.weight < 0:
            raise RecipeError(f"model.heads.{key}.weight: {head.weight} is negative; use 0 to drop the head")
    if config.model.separator is not None:
        if active_heads(config):
            raise RecipeError(
                "model.separator: a separator recipe trains no heads; set the weights of "
                f"{', '.join(active_heads(config))} to 0 or remove model.separator"
            )
        registry.get("separators", config.model.separator.name, where="model.separator.name")
        registry.get("losses", config.model.separator.loss, where="model.separator.loss")
        return
    if not active_heads(config):
        raise RecipeError("model.heads: no head has a weight above 0; give at least one head a positive weight")
    for key, head in active_heads(config).items():
        component = registry.get("heads", head.name or key, where=f"model.heads.{key}.name")
        registry.get("losses", head.loss or component.info["loss"], where=f"model.heads.{key}.loss")
        _check_train_frames(key, head, component.info.get("frame_local", False))


def _check_train_frames(key: str, head: HeadConfig, frame_local: bool) -> None:
    """``train_frames`` is a fraction in (0, 1]; below 1 only for a head that declared frame_local."""
    fraction = head.train_frames
    if not (0 < fraction <= 1):  # also false for NaN
        raise RecipeError(f"model.heads.{key}.train_frames: {fraction} must be in (0, 1], e.g. 0.25 or 1")
    if fraction < 1 and not frame_local:
        raise RecipeError(
            f"model.heads.{key}.train_frames: {fraction}, but head '{head.name or key}' did not register "
            "frame_local=True (its output mixes frames); use 1"
        )


def check_optim(config: DictConfig) -> None:
    """The optimiser's name and numbers, the schedule's name and options."""
    o = config.optim
    if o.lr <= 0:
        raise RecipeError(f"optim.lr: {o.lr} must be positive, e.g. 1e-3")
    if o.weight_decay < 0:
        raise RecipeError(f"optim.weight_decay: {o.weight_decay} must not be negative")
    if o.grad_clip < 0:
        raise RecipeError(f"optim.grad_clip: {o.grad_clip} must not be negative; 0 disables clipping")
    if str(o.name).lower() not in OPTIMIZERS:
        raise RecipeError(f"optim.name: unknown optimiser '{o.name}'; use one of {', '.join(OPTIMIZERS)}")
    schedule_options(config)


def schedule_options(config: DictConfig) -> Any:
    """``optim.schedule_options`` checked against the schedule's schema and ranges (None for ``none``)."""
    name = str(config.optim.schedule).lower()
    if name not in SCHEDULES:
        raise RecipeError(
            f"optim.schedule: unknown schedule '{config.optim.schedule}'; use one of {', '.join(SCHEDULES)}"
        )
    options = component_options(SCHEDULES[name], config.optim.schedule_options, "optim.schedule_options")
    if isinstance(options, PlateauOptions):
        _check_option(0 < options.factor < 1, "factor", options.factor, "between 0 and 1, e.g. 0.5")
        _check_option(options.patience >= 0, "patience", options.patience, "0 or more validations")
    elif isinstance(options, CosineOptions):
        _check_option(options.warmup_steps >= 0, "warmup_steps", options.warmup_steps, "0 or more steps")
        _check_option(0 <= options.min_lr <= config.optim.lr, "min_lr", options.min_lr, "between 0 and optim.lr")
    elif isinstance(options, StepOptions):
        size = options.size(int(config.trainer.max_steps))
        _check_option(size >= 1, "step_size", size, "at least 1 step")
        _check_option(options.gamma > 0, "gamma", options.gamma, "positive, e.g. 0.1")
    return options


def _check_option(ok: bool, key: str, value: Any, want: str) -> None:
    if not ok:
        raise RecipeError(f"optim.schedule_options.{key}: {value} is out of range; use {want}")


def validation_metrics(config: DictConfig) -> list[str]:
    """What validation reports: the weighted total and each head's loss (``loss/separator`` for a separator)."""
    heads = [SEPARATOR_HEAD] if config.model.separator is not None else list(active_heads(config))
    return ["loss"] + [f"loss/{h}" for h in heads]


def check_trainer(config: DictConfig) -> None:
    """Budgets, intervals, the monitored metric and its direction, workers and precision."""
    t = config.trainer
    if t.max_steps < 1:
        raise RecipeError(f"trainer.max_steps: {t.max_steps}; train at least 1 step")
    if t.max_minutes is not None and t.max_minutes < 0:
        raise RecipeError(f"trainer.max_minutes: {t.max_minutes} is negative; give a budget >= 0 or null")
    if t.batch_size < 1:
        raise RecipeError("trainer.batch_size: must be at least 1")
    for key in ("validate_every", "log_every"):
        if t[key] < 1:
            raise RecipeError(f"trainer.{key}: {t[key]} must be at least 1")
    if t.patience < 0:
        raise RecipeError(f"trainer.patience: {t.patience} must be 0 (off) or more validations")
    if t.monitor_mode not in MONITOR_MODES:
        raise RecipeError(f"trainer.monitor_mode: '{t.monitor_mode}'; use min or max")
    metrics = validation_metrics(config)
    if t.monitor not in metrics:
        raise RecipeError(f"trainer.monitor: '{t.monitor}' is not a validation metric; use one of {', '.join(metrics)}")
    if t.num_workers < 0:
        raise RecipeError(f"trainer.num_workers: {t.num_workers} must not be negative")
    if t.precision not in PRECISIONS:
        raise RecipeError(f"trainer.precision: '{t.precision}' is not a precision; use {', '.join(PRECISIONS)}")


def check_eval(config: DictConfig, registry: Registry) -> None:
    """Metric names and the evaluation's batch and chunk sizes."""
    for name in config.eval.metrics:
        registry.get("metrics", name, where="eval.metrics")
    if config.eval.batch_size < 1 or config.eval.chunk_seconds <= 0:
        raise RecipeError("eval: batch_size must be at least 1 and chunk_seconds positive")
    hold = config.eval.get("note_hold_threshold")
    if hold is not None and hold > config.eval.note_threshold:
        raise RecipeError(
            f"eval.note_hold_threshold: {hold} is above eval.note_threshold ({config.eval.note_threshold}); "
            "notes start at note_threshold and hold down to it, so use a value at most that, or null"
        )
    if config.eval.min_note_frames < 1:
        raise RecipeError(f"eval.min_note_frames: {config.eval.min_note_frames}; use at least 1")
