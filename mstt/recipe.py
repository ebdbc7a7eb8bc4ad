"""Recipes: YAML files merged left to right by omegaconf into the typed schema of :mod:`mstt.schema`.

The schema's names are importable from here too, as they always were.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Iterator

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mstt.errors import RecipeError
from mstt.registry import closest
from mstt.schema import (  # noqa: F401  (re-exported: the schema's names are part of this module's API)
    OPTIMIZERS,
    SCHEDULES,
    SEPARATOR_HEAD,
    ComponentConfig,
    CosineOptions,
    DataConfig,
    EvalConfig,
    FeaturesConfig,
    HeadConfig,
    ModelConfig,
    OptimConfig,
    PlateauOptions,
    Recipe,
    SeparatorConfig,
    StepOptions,
    TrainerConfig,
)

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


# ``model.separator_options.<name>: {...}`` in any layer: options for separator <name> only,
# applied as if that layer had written them under ``model.separator.options`` when the merged
# recipe's separator is <name>, and dropped otherwise. So one overlay (recipes/quick.yaml) can
# size every separator and still leave a heads recipe, or a recipe of another separator, as it
# was: a plain ``model.separator`` in an overlay would turn a heads recipe into a separator
# recipe, and one options mapping cannot fit separators whose options differ. The key is not
# part of the schema: the resolved recipe holds only the options it applied.
SEPARATOR_OPTIONS = "separator_options"


def _split_separator_options(where: str, layer: DictConfig) -> tuple[DictConfig, dict[str, Any]]:
    """The layer without ``model.separator_options``, and that mapping (separator name -> options)."""
    model = layer.get("model") if isinstance(layer, DictConfig) else None
    if not isinstance(model, DictConfig) or SEPARATOR_OPTIONS not in model:
        return layer, {}
    raw = OmegaConf.to_container(layer, resolve=False)
    per_name = raw["model"].pop(SEPARATOR_OPTIONS)
    if per_name is None:
        per_name = {}
    if not isinstance(per_name, dict) or not all(isinstance(v, dict) for v in per_name.values()):
        raise RecipeError(
            f"{where}: model.{SEPARATOR_OPTIONS}: give a mapping of separator name -> options, "
            "e.g. {convtasnet: {n_repeats: 1}}"
        )
    return OmegaConf.create(raw), {str(k): v for k, v in per_name.items()}


def _check_separator_names(where: str, names: list[str]) -> None:
    """Refuse a name in ``model.separator_options`` that is a misspelt registered separator.

    A name no plugin registers and that is close to none is allowed: the overlay may size a
    separator whose plugin this installation lacks.
    """
    from mstt.plugins import get_registry  # lazily: the registry loads the plugins

    known = get_registry().names("separators")
    for name in names:
        if name not in known and (hint := closest(name, known)):
            raise RecipeError(f"{where}: model.{SEPARATOR_OPTIONS}.{name}: no such separator; did you mean {hint}?")


def _merge(layers: list[tuple[str, DictConfig]]) -> DictConfig:
    """The schema's defaults with every layer merged on top, left to right."""
    config = OmegaConf.structured(Recipe)
    for where, layer in layers:
        try:
            config = OmegaConf.merge(config, layer)
        except OmegaConfBaseException as exc:
            raise RecipeError(f"{where}: {_describe(exc)}") from None
        except (TypeError, ValueError) as exc:  # omegaconf's own, e.g. a list given for a mapping
            raise RecipeError(f"{where}: {exc}; give the value this key's section expects") from None
    return config


def load_recipe(files: list[str | Path], overrides: list[str] | None = None) -> DictConfig:
    """Merge recipe files (left to right) and ``key=value`` overrides into a typed config.

    ``model.separator_options.<name>`` (see :data:`SEPARATOR_OPTIONS`) is applied in its layer's
    place when the merged recipe's separator is ``<name>``.
    """
    if not files:
        raise RecipeError("no recipe given; pass a YAML file such as recipes/cerberus_set4.yaml")
    layers: list[tuple[str, DictConfig]] = []
    for f in files:
        layers += _read_yaml(Path(f))
    layers += [(f"override {o}" if o.isprintable() else f"override {o!r}", _parse_override(o)) for o in overrides or []]
    split = [(where, *_split_separator_options(where, layer)) for where, layer in layers]
    layers = [(where, layer) for where, layer, _ in split]
    config = _merge(layers)
    separator = config.model.separator
    for where, _, per_name in split:
        if per_name:
            _check_separator_names(where, list(per_name))
    if separator is not None and any(separator.name in per_name for _, _, per_name in split):
        # Again, each layer preceded by its options for this separator (the layer's own
        # model.separator.options, if any, win within it).
        layers = [
            (where, OmegaConf.merge({"model": {"separator": {"options": per_name[separator.name]}}}, layer))
            if separator.name in per_name else (where, layer)
            for where, layer, per_name in split
        ]
        config = _merge(layers)
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
