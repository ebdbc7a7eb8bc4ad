"""``mstt export``: a small inference-only checkpoint (loading one: :mod:`mstt.checkpoints`).

An exported file is an ordinary mstt checkpoint (same ``format`` and ``format_version``, read
with ``torch.load(weights_only=True)``) holding only what inference needs: the resolved recipe,
the weights (optionally float16), the mstt version and the versions of the plugins whose
components the recipe uses. Optimiser, scheduler, RNG states and history are left out.
"""

from __future__ import annotations

from pathlib import Path

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
