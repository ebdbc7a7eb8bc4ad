"""Checkpoint -> model: the one loader behind ``mstt eval``, ``separate``, ``export``, ``bench``, ``mstt run`` and ``mstt.load``.

Every path rebuilds the model through the registry from a recipe (the checkpoint's own, or the
caller's when it trained that checkpoint) and loads the weights with one-line errors: another
format version, a recipe this mstt cannot build, a plugin that is not installed, weights that
do not fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

import mstt
from mstt.errors import MsttError, RecipeError, RegistryError
from mstt.plugins import get_registry
from mstt.recipe import recipe_from_dict
from mstt.train.checkpoint import CHECKPOINT_FORMAT_VERSION, load_checkpoint, load_model_weights


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """An mstt checkpoint of this format version with a recipe and weights, else a one-line MsttError."""
    path = Path(path)
    data = load_checkpoint(path)
    version = data.get("format_version")
    made_by = data.get("mstt_version", "an unknown version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise MsttError(
            f"{path}: checkpoint format {version} (made by mstt {made_by}) differs from the format "
            f"{CHECKPOINT_FORMAT_VERSION} this mstt {mstt.__version__} reads; use mstt {made_by} or retrain"
        )
    if not isinstance(data.get("recipe"), dict) or not isinstance(data.get("model"), dict):
        raise MsttError(f"{path}: the checkpoint holds no recipe or no weights; pass a checkpoint written by mstt run or mstt export")
    return data


def missing_plugins(data: dict[str, Any]) -> list[str]:
    """Plugin distributions the checkpoint was made with that are not loaded now (as ``name version``)."""
    registry = get_registry()
    saved = data.get("plugins") or {}
    return [f"{d} {v}" for d, v in saved.items() if d not in registry.plugin_versions]


def _build(data: dict[str, Any], path: Path, config: DictConfig | None) -> tuple[torch.nn.Module, DictConfig]:
    """The model of ``config`` (default: the checkpoint's recipe); a missing plugin is named."""
    from mstt.nn.build import build_model

    try:
        config = config if config is not None else recipe_from_dict(data["recipe"])
        return build_model(config), config
    except RegistryError as exc:
        missing = missing_plugins(data)
        if missing:
            raise MsttError(
                f"{path}: needs plugin {', '.join(missing)}, which is not installed "
                f"(pip install {' '.join(m.split()[0] for m in missing)})"
            ) from None
        raise MsttError(f"{path}: {_first_line(exc)}") from None
    except RecipeError as exc:
        raise MsttError(f"{path}: its recipe does not build with mstt {mstt.__version__} ({_first_line(exc)})") from None


def model_from_checkpoint(
    path: str | Path, config: DictConfig | None = None
) -> tuple[torch.nn.Module, DictConfig, list[str]]:
    """Rebuild a checkpoint's model and load its weights -> (model in float32, recipe, notes).

    ``config`` builds the model instead of the checkpoint's recipe: the experiment runner and
    ``mstt bench`` pass the recipe they trained with, which may differ in budgets.
    """
    path = Path(path)
    data = read_checkpoint(path)
    made_by = str(data.get("mstt_version", "unknown"))
    model, config = _build(data, path, config)
    hint = f"it was made by mstt {made_by}, this is {mstt.__version__}; " if made_by != mstt.__version__ else ""
    # copy_ casts, so float16 weights of an exported file load into the float32 model.
    load_model_weights(model, data["model"], path, hint)
    notes = [f"{path.name} was made by mstt {made_by}; this is mstt {mstt.__version__}"] if made_by != mstt.__version__ else []
    return model.float(), config, notes
