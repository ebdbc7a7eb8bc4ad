"""``mstt export``: a small inference-only checkpoint (loading one: :mod:`mstt.checkpoints`).

An exported file is an ordinary mstt checkpoint (same ``format`` and ``format_version``, read
with ``torch.load(weights_only=True)``) holding only what inference needs: the resolved recipe,
the weights (optionally float16), the mstt version and the versions of the plugins whose
components the recipe uses. Optimiser, scheduler, RNG states and history are left out, and so
are heads that inference never reads (deep clustering's embedding when a mask head separates;
the recipe saved with the export gives them weight 0, and ``dropped_heads`` names them).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

import mstt
from mstt.checkpoints import model_from_checkpoint, read_checkpoint  # re-exported: older code imports them from here
from mstt.errors import MsttError
from mstt.plugins import get_registry
from mstt.recipe import active_heads
from mstt.train.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, save_checkpoint


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


def unused_heads(config: DictConfig) -> list[str]:
    """Active heads whose output inference never reads: an ``embedding`` when another head outputs a ``mask``."""
    registry = get_registry()
    if config.model.separator is not None:
        return []
    outputs = {key: registry.get("heads", head.name or key).info["output"] for key, head in active_heads(config).items()}
    if "mask" not in outputs.values():
        return []
    return [key for key, output in outputs.items() if output == "embedding"]


def without_heads(recipe: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """A copy of a plain recipe with heads ``keys`` at weight 0 (and a monitor on them moved to the total loss)."""
    recipe = copy.deepcopy(recipe)
    for key in keys:
        recipe["model"]["heads"][key]["weight"] = 0.0
        if recipe.get("trainer", {}).get("monitor") == f"loss/{key}":
            recipe["trainer"]["monitor"] = "loss"
    return recipe


def export_checkpoint(source: str | Path, out: str | Path, half: bool = False, all_heads: bool = False) -> Path:
    """Write an inference-only copy of checkpoint ``source`` to ``out`` (weights as float16 with ``half``).

    Heads inference does not read are left out unless ``all_heads`` (e.g. to fine-tune them later).
    """
    source, out = Path(source), Path(out)
    data = read_checkpoint(source)
    model, config, _ = model_from_checkpoint(source)  # proves that the file loads before it is exported
    dropped = [] if all_heads else unused_heads(config)
    prefixes = tuple(f"heads.{key}." for key in dropped)
    weights = {k: v.detach().half() if half and v.is_floating_point() else v.detach()
               for k, v in model.state_dict().items() if not k.startswith(prefixes)}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "mstt_version": str(data.get("mstt_version", mstt.__version__)),
        "plugins": used_plugins(config, dict(data.get("plugins") or {})),
        "recipe": without_heads(data["recipe"], dropped),
        "model": weights,
        "dropped_heads": dropped,
        "inference_only": True,
        "half": bool(half),
        "step": int(data.get("step", 0) or 0),
    }
    if out.resolve() == source.resolve():
        raise MsttError(f"{out}: would overwrite the checkpoint being exported; choose another OUT")
    save_checkpoint(payload, out, flag="OUT")
    return out
