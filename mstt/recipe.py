"""Recipes: YAML files merged left to right by omegaconf into typed dataclass schemas."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mstt.constants import EVAL_CHUNK_SECONDS
from mstt.errors import RecipeError
from mstt.registry import closest

# ---------------------------------------------------------------- schemas


@dataclass
class DataConfig:
    """Where examples come from and which sources they hold."""

    kind: str = "synth"  # a registered dataset adapter
    root: Optional[str] = None  # dataset folder; None with kind synth = generated into $MSTT_CACHE
    sources: List[str] = field(default_factory=lambda: ["piano", "guitar"])
    sample_rate: int = 16000
    crop_seconds: float = 2.0  # training crop length
    eval_segment_seconds: Optional[float] = None  # None: whole tracks at evaluation
    options: Dict[str, Any] = field(default_factory=dict)  # the adapter's own options
    gain_augment_db: float = 0.0  # training crops: each source at a random gain within ±N dB, mixture re-summed; 0: off
    eq_augment_db: float = 0.0  # training crops: each source through a random smooth EQ within ±N dB; 0: off


@dataclass
class FeaturesConfig:
    """STFT and the encoder's input features."""

    n_fft: int = 1024
    hop_length: int = 256
    window: str = "hann"
    compression: str = "log"  # none | log | sqrt
    normalization: str = "utterance"  # none | utterance | frequency


@dataclass
class ComponentConfig:
    """A registered component and its options."""

    name: str = "blstm"
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class HeadConfig:
    """One head: registry name (default: its key), loss weight, loss and options."""

    name: Optional[str] = None
    weight: float = 1.0  # 0 drops the head
    loss: Optional[str] = None  # None: the head's default loss
    options: Dict[str, Any] = field(default_factory=dict)
    loss_options: Dict[str, Any] = field(default_factory=dict)
    # Fraction of frames the head's loss sees per training step (a fresh random subset each
    # step; inference always uses every frame). Below 1 only for heads registered frame_local.
    train_frames: float = 1.0


@dataclass
class SeparatorConfig:
    """A whole waveform separator (registered under ``separators``) and its waveform loss."""

    name: str = "convtasnet"
    options: Dict[str, Any] = field(default_factory=dict)
    loss: str = "waveform"
    loss_options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """One trunk and a mapping of heads, or a whole separator instead."""

    encoder: ComponentConfig = field(default_factory=ComponentConfig)
    heads: Dict[str, HeadConfig] = field(default_factory=dict)
    separator: Optional[SeparatorConfig] = None  # set: a baseline separator replaces trunk + heads
    # Fine-tuning: a bundled model's name or a checkpoint whose weights a fresh run starts from (mstt.train.init)
    init: Optional[str] = None


# The one pseudo-head of a separator model: its loss is logged (and monitored) as loss/separator.
SEPARATOR_HEAD = "separator"


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule."""

    name: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only: plain SGD is too slow for recurrent trunks
    grad_clip: float = 5.0  # max global gradient norm; 0 disables clipping
    schedule: str = "plateau"  # none | plateau | cosine | step
    schedule_options: Dict[str, Any] = field(default_factory=dict)


OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class PlateauOptions:
    """``optim.schedule_options`` of ``plateau``: reduce on plateau of the monitored validation metric."""

    factor: float = 0.5
    patience: int = 3  # validations
    threshold: float = 1e-4
    min_lr: float = 0.0


@dataclass
class CosineOptions:
    """``optim.schedule_options`` of ``cosine``: warm-up, then decay over max_steps or max_minutes, whichever ends first."""

    warmup_steps: int = 0
    min_lr: float = 0.0


@dataclass
class StepOptions:
    """``optim.schedule_options`` of ``step``: step decay."""

    step_size: int | None = None  # steps; None = max_steps // 3
    gamma: float = 0.1

    def size(self, max_steps: int) -> int:
        """The step size in steps, with the default resolved against ``max_steps``."""
        return self.step_size if self.step_size is not None else max(1, max_steps // 3)


# Schedule name -> the schema of its options (None: it takes none).
SCHEDULES: dict[str, type | None] = {
    "none": None,
    "plateau": PlateauOptions,
    "cosine": CosineOptions,
    "step": StepOptions,
}


@dataclass
class TrainerConfig:
    """The training loop."""

    max_steps: int = 100_000
    max_minutes: Optional[float] = None  # wall-clock budget; stops at whichever comes first
    batch_size: int = 8
    validate_every: int = 1000
    patience: int = 10  # validations without improvement before early stopping; 0 disables
    monitor: str = "loss"  # validation metric that picks best.pt
    monitor_mode: str = "min"  # min | max
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto: bf16 autocast on CUDA and on CPUs with native bf16 (avx512_bf16 / AMX), else fp32;
    # bf16 or fp32 force it. Weights, optimizer state and checkpoints stay float32 either way.
    precision: str = "auto"
    amp: bool = True  # false: the older spelling of precision=fp32
    compile: bool = False  # torch.compile the model
    num_workers: int = 2
    seed: int = 0
    log_every: int = 50
    save_every_minutes: float = 5.0  # also write last.pt this often between validations; 0: only at validations


@dataclass
class EvalConfig:
    """The shared evaluation."""

    split: str = "test"
    metrics: List[str] = field(default_factory=lambda: ["si_sdr", "sdr", "transcription"])
    bss_eval: bool = False  # SIR/SAR through mir_eval; slow
    note_threshold: float = 0.4  # a note starts where a key's roll probability passes this
    # ... and lasts while it stays above this (hysteresis); null: note_threshold (no hysteresis)
    note_hold_threshold: Optional[float] = None
    min_note_frames: int = 2
    max_examples: Optional[int] = None
    report_examples: int = 3
    batch_size: int = 4  # windows scored together; waveform separators on CPU want 1 (memory)
    chunk_seconds: float = EVAL_CHUNK_SECONDS  # long tracks run through the model in chunks of this length


@dataclass
class Recipe:
    """A whole experiment: data, features, model, optimiser, trainer, evaluation."""

    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# ------------------------------------------------------------ error text


def _keys_of(node: Any) -> list[str]:
    """Valid keys of a config node, for suggestions."""
    if isinstance(node, DictConfig):
        return [str(k) for k in node.keys()]
    if dataclasses.is_dataclass(node):
        return [f.name for f in dataclasses.fields(node)]
    return []


def _describe(exc: OmegaConfBaseException, prefix: str = "") -> str:
    """One line from an omegaconf error: the full key path, what is wrong, the fix."""
    key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or "?"
    path = f"{prefix}{key}" if prefix and not str(key).startswith(prefix) else str(key)
    message = str(exc).splitlines()[0]
    if type(exc).__name__ in ("ConfigKeyError", "ConfigAttributeError") and "not in" in message:
        leaf = str(getattr(exc, "key", "") or path.rsplit(".", 1)[-1])
        parent = getattr(exc, "parent_node", None) or getattr(exc, "object_type", None)
        hint = closest(leaf, _keys_of(parent))
        suggestion = f"; did you mean {hint}?" if hint else f"; valid keys: {', '.join(_keys_of(parent))}"
        return f"{path}: unknown key{suggestion}"
    if "Value" in message and ("could not be converted" in message or "is not a valid" in message):
        return f"{path}: {message.replace('Value ', 'value ', 1)}"
    return f"{path}: {message}"


# ---------------------------------------------------------------- loading


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> list[tuple[str, DictConfig]]:
    """A recipe file and, before it, the files its ``base`` key names (relative to it)."""
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise RecipeError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections, not a {type(raw).__name__}")
    bases = raw.pop("base", [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise RecipeError(f"{path}: base: give a file name or a list of file names")
    layers: list[tuple[str, DictConfig]] = []
    for base in bases:
        base_path = (path.parent / base).resolve()
        if base_path in chain:
            raise RecipeError(f"{path}: base {base} includes itself")
        layers += _read_yaml(base_path, chain + (path.resolve(),))
    layers.append((str(path), OmegaConf.create(raw)))
    return layers


def _parse_override(text: str) -> DictConfig:
    """``a.b=value`` -> a config; the value is parsed as YAML (numbers, lists, null)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise RecipeError(f"override '{text}': write it as key=value, e.g. trainer.max_steps=100")
    try:
        return OmegaConf.from_dotlist([f"{key}={value}"])
    except (OmegaConfBaseException, yaml.YAMLError) as exc:  # the value is parsed as YAML: control characters
        raise RecipeError(f"override {text!r}: {str(exc).splitlines()[0]}; quote the value or leave out odd characters") from None


def _failing_interpolation(config: DictConfig) -> str:
    """The dotted key of the first ${...} value that does not resolve (for errors that lack one)."""
    for key, value in _leaves(OmegaConf.to_container(config, resolve=False), ""):
        if isinstance(value, str) and "${" in value:
            try:
                OmegaConf.select(config, key, throw_on_resolution_failure=True)
            except Exception:  # noqa: BLE001 - any failure is the one to name
                return key
    return "?"


def _leaves(value: Any, key: str) -> Iterator[tuple[str, Any]]:
    """Every leaf of a plain container as (dotted key, value)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{key}.{k}" if key else str(k))
    else:
        yield key, value


def load_recipe(files: list[str | Path], overrides: list[str] | None = None) -> DictConfig:
    """Merge recipe files (left to right) and ``key=value`` overrides into a typed config."""
    if not files:
        raise RecipeError("no recipe given; pass a YAML file such as recipes/cerberus_set4.yaml")
    config = OmegaConf.structured(Recipe)
    layers: list[tuple[str, DictConfig]] = []
    for f in files:
        layers += _read_yaml(Path(f))
    layers += [(f"override {o}" if o.isprintable() else f"override {o!r}", _parse_override(o)) for o in overrides or []]
    for where, layer in layers:
        try:
            config = OmegaConf.merge(config, layer)
        except OmegaConfBaseException as exc:
            raise RecipeError(f"{where}: {_describe(exc)}") from None
        except (TypeError, ValueError) as exc:  # omegaconf's own, e.g. a list given for a mapping
            raise RecipeError(f"{where}: {exc}; give the value this key's section expects") from None
    try:  # every ${...} once now, so that one naming no key or of the wrong type is a recipe error
        OmegaConf.to_container(config, resolve=True)
    except OmegaConfBaseException as exc:
        text = _describe(exc)
        if text.startswith("?:"):  # omegaconf did not say where: the first interpolation that fails
            text = f"{_failing_interpolation(config)}{text[1:]}"
        raise RecipeError(f"{text}; fix the ${{...}} interpolation or give a plain value") from None
    if not config.name:
        config.name = Path(files[0]).stem
    check_numbers(config)
    return config


def to_yaml(config: DictConfig) -> str:
    """The resolved recipe as YAML text."""
    return OmegaConf.to_yaml(config, resolve=True)


def recipe_from_dict(data: dict[str, Any]) -> DictConfig:
    """A typed recipe from a plain dict (e.g. read back from a checkpoint)."""
    try:
        return OmegaConf.merge(OmegaConf.structured(Recipe), OmegaConf.create(data))
    except OmegaConfBaseException as exc:
        raise RecipeError(f"saved recipe: {_describe(exc)}") from None


# ------------------------------------------------------------- validation

# Float options with a range, checked at load so that --dry-run refuses them (mstt.checks
# checks the others, e.g. data.crop_seconds, when the model is built; a NaN fails at load):
# key -> (lowest allowed, whether the lowest itself is allowed, highest or None, what to write).
RANGES: dict[str, tuple[float, bool, float | None, str]] = {
    "optim.lr": (0.0, False, None, "a positive finite number"),
    "optim.weight_decay": (0.0, True, None, "a finite number >= 0"),
    "optim.momentum": (0.0, True, 1.0, "a number in [0, 1)"),
    "optim.grad_clip": (0.0, True, None, "a finite number >= 0 (0: no clipping)"),
    "data.eval_segment_seconds": (0.0, False, None, "a positive finite number of seconds, or null"),
    "trainer.save_every_minutes": (0.0, True, None, "a finite number of minutes >= 0 (0: only at validations)"),
    "eval.note_threshold": (0.0, False, 1.0, "a probability in (0, 1)"),
    "eval.note_hold_threshold": (0.0, False, 1.0, "a probability in (0, 1), at most eval.note_threshold, or null"),
    "eval.chunk_seconds": (0.0, False, None, "a positive finite number of seconds"),
}


def _float_leaves(value: Any, key: str) -> Iterator[tuple[str, float]]:
    """Every float in a plain container as (dotted key, value); list items as ``key[i]``."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _float_leaves(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _float_leaves(v, f"{key}[{i}]")
    elif isinstance(value, float):
        yield key, value


def _in_range(value: float, low: float, low_ok: bool, high: float | None) -> bool:
    """Whether ``value`` is finite and within the range (NaN compares false, so it fails here)."""
    above = value >= low if low_ok else value > low
    return math.isfinite(value) and above and (high is None or value < high)


def check_numbers(config: DictConfig) -> None:
    """Refuse a NaN or infinity anywhere (component options included) and out-of-range floats, naming the key."""
    for key, (low, low_ok, high, wanted) in RANGES.items():
        value = OmegaConf.select(config, key)
        if value is not None and not _in_range(float(value), low, low_ok, high):
            raise RecipeError(f"{key}: {value} must be {wanted}")
    for key, value in _float_leaves(OmegaConf.to_container(config, resolve=True), ""):
        if not math.isfinite(value):
            raise RecipeError(f"{key}: {value} must be a finite number")


def component_options(schema: type | None, options: Any, where: str) -> Any:
    """Validate a component's options against its own dataclass schema; returns an instance."""
    given = OmegaConf.to_container(options, resolve=True) if isinstance(options, DictConfig) else dict(options or {})
    if schema is None:
        if given:
            raise RecipeError(f"{where}: this component takes no options; remove {', '.join(map(str, given))}")
        return None
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), given)
    except OmegaConfBaseException as exc:
        raise RecipeError(_describe(exc, prefix=f"{where}.")) from None
    # A string such as "nan" in a recipe's options becomes a float only here, through the schema.
    for key, value in _float_leaves(OmegaConf.to_container(merged, resolve=True), where):
        if not math.isfinite(value):
            raise RecipeError(f"{key}: {value} must be a finite number")
    return OmegaConf.to_object(merged)


def active_heads(config: DictConfig) -> dict[str, HeadConfig]:
    """Heads with a weight above zero (a zero weight drops the head)."""
    return {key: head for key, head in config.model.heads.items() if head.weight > 0}
