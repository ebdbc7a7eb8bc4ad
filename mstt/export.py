"""Checkpoint -> model for inference, and ``mstt export``: a small inference-only checkpoint.

An exported file is an ordinary mstt checkpoint (same ``format`` and ``format_version``, read
with ``torch.load(weights_only=True)``) holding only what inference needs: the resolved recipe,
the weights (optionally float16), the mstt version and the versions of the plugins whose
components the recipe uses. Optimiser, scheduler, RNG states and history are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

import mstt
from mstt.errors import MsttError, RecipeError, RegistryError
from mstt.plugins import get_registry
from mstt.recipe import active_heads, recipe_from_dict
from mstt.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
)


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


def _missing_plugins(data: dict[str, Any]) -> list[str]:
    """Plugin distributions the checkpoint was made with that are not loaded now (as ``name version``)."""
    registry = get_registry()
    saved = data.get("plugins") or {}
    return [f"{d} {v}" for d, v in saved.items() if d not in registry.plugin_versions]


def model_from_checkpoint(path: str | Path) -> tuple[torch.nn.Module, DictConfig, list[str]]:
    """Rebuild a checkpoint's model from its recipe and load its weights -> (model in float32, recipe, notes)."""
    from mstt.nn.build import build_model

    path = Path(path)
    data = read_checkpoint(path)
    made_by = str(data.get("mstt_version", "unknown"))
    try:
        config = recipe_from_dict(data["recipe"])
        model = build_model(config)
    except RegistryError as exc:
        missing = _missing_plugins(data)
        if missing:
            raise MsttError(
                f"{path}: needs plugin {', '.join(missing)}, which is not installed "
                f"(pip install {' '.join(m.split()[0] for m in missing)})"
            ) from None
        raise MsttError(f"{path}: {_first_line(exc)}") from None
    except RecipeError as exc:
        raise MsttError(f"{path}: its recipe does not build with mstt {mstt.__version__} ({_first_line(exc)})") from None
    hint = f"it was made by mstt {made_by}, this is {mstt.__version__}; " if made_by != mstt.__version__ else ""
    # copy_ casts, so float16 weights of an exported file load into the float32 model.
    load_model_weights(model, data["model"], path, hint)
    notes = [f"{path.name} was made by mstt {made_by}; this is mstt {mstt.__version__}"] if made_by != mstt.__version__ else []
    return model.float(), config, notes


def used_plugins(config: DictConfig, saved: dict[str, str]) -> dict[str, str]:
    """``{distribution: version}`` of the plugins providing the recipe's encoder, heads, losses or separator."""
    registry = get_registry()
    wanted: list[tuple[str, str]] = []
    model = config.model
    if model.separator is not None:
        wanted += [("separators", model.separator.name), ("losses", model.separator.loss)]
    else:
        wanted.append(("encoders", model.encoder.name))
        for key, head in active_heads(config).items():
            component = registry.get("heads", head.name or key)
            wanted += [("heads", component.name), ("losses", head.loss or component.info["loss"])]
    plugins = {registry.get(kind, name).plugin for kind, name in wanted}
    return {p: saved.get(p, registry.plugin_versions.get(p, "unknown")) for p in sorted(plugins)}


def export_checkpoint(source: str | Path, out: str | Path, half: bool = False) -> Path:
    """Write an inference-only copy of checkpoint ``source`` to ``out`` (weights as float16 with ``half``)."""
    source, out = Path(source), Path(out)
    data = read_checkpoint(source)
    model, config, _ = model_from_checkpoint(source)  # proves that the file loads before it is exported
    weights = {k: v.detach().half() if half and v.is_floating_point() else v.detach()
               for k, v in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "mstt_version": str(data.get("mstt_version", mstt.__version__)),
        "plugins": used_plugins(config, dict(data.get("plugins") or {})),
        "recipe": data["recipe"],
        "model": weights,
        "inference_only": True,
        "half": bool(half),
        "step": int(data.get("step", 0) or 0),
    }
    if out.resolve() == source.resolve():
        raise MsttError(f"{out}: would overwrite the checkpoint being exported; choose another OUT")
    save_checkpoint(payload, out, flag="OUT")
    return out
