"""Fine-tuning: a fresh run starts from the weights of a bundled model or a checkpoint (``model.init``).

The run still begins at step 0 with a fresh optimiser and schedule; only the weights come from
elsewhere. The front end (sample rate, STFT) and the trunk must match: a difference is one line
naming the key or parameter with both values. Heads may differ: with other sources, every head
whose parameter shapes depend on the number of sources is re-initialised (probed by building it
for one source more); a head whose options changed its shapes is re-initialised too, and a head
the init file lacks (e.g. deep clustering, which ``mstt export`` leaves out) starts afresh.
Everything else is loaded (float16 exports are cast to float32).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from mstt.errors import MsttError
from mstt.recipe import component_options

# Recipe keys that decide what the trunk's input means; fine-tuning with other values is refused.
FRONT_END_KEYS = ("data.sample_rate", "features.n_fft", "features.hop_length", "features.window",
                  "features.compression", "features.normalization")


def _select(recipe: dict[str, Any], key: str) -> Any:
    node: Any = recipe
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) if t.dim() else "a scalar"


def _head(key: str) -> str | None:
    """``heads.<k>.…`` -> ``k``; a trunk (front end, encoder, separator) parameter -> None."""
    return key.split(".")[1] if key.startswith("heads.") else None


def source_dependent_heads(model: nn.Module, config: DictConfig) -> set[str]:
    """Keys of the heads whose parameter shapes change with the number of sources."""
    from mstt.plugins import get_registry

    registry, n = get_registry(), len(model.sources)
    dependent = set()
    for key, head in getattr(model, "heads", {}).items():
        cfg = config.model.heads[key]
        comp = registry.get("heads", cfg.name or key)
        options = component_options(comp.options, cfg.options, f"model.heads.{key}.options")
        probe = comp.factory(model.encoder.out_features, n + 1, model.front_end.n_freq, options)
        if {k: v.shape for k, v in probe.state_dict().items()} != {k: v.shape for k, v in head.state_dict().items()}:
            dependent.add(key)
    return dependent


def _check_front_end(recipe: dict[str, Any], config: DictConfig, what: str) -> None:
    """The init file's sample rate and STFT settings equal the recipe's."""
    for key in FRONT_END_KEYS:
        there, here = _select(recipe, key), OmegaConf.select(config, key)
        if there != here:
            raise MsttError(f"{what}: {key} is {there!r} there but {here!r} in this recipe; "
                            f"fine-tuning needs the same front end: set {key}={there}")


def _sort(own: dict[str, torch.Tensor], saved: dict[str, torch.Tensor], reinit: set[str], what: str) -> tuple[set[str], set[str]]:
    """-> (heads to re-initialise, heads the init file lacks); a trunk mismatch is a one-line MsttError."""
    fresh, saved_heads = set(reinit), {_head(k) for k in saved} - {None}
    for key, value in own.items():
        head = _head(key)
        if key in saved and saved[key].shape == value.shape:
            continue
        if head is not None:
            fresh.add(head)
        elif key in saved:
            raise MsttError(f"{what}: parameter {key} is {_shape(saved[key])} there but {_shape(value)} in this recipe's "
                            "model; fine-tuning needs the same trunk (model.encoder, features)")
        else:
            raise MsttError(f"{what}: lacks trunk parameter {key}, which this recipe's model has; "
                            "fine-tuning needs the same trunk (model.encoder)")
    extra = [k for k in saved if _head(k) is None and k not in own]
    if extra:
        raise MsttError(f"{what}: has trunk parameter {extra[0]}, which this recipe's model lacks; "
                        "fine-tuning needs the same trunk (model.encoder)")
    own_heads = {_head(k) for k in own} - {None}
    new = {h for h in own_heads if h not in saved_heads}
    return fresh - new, new


def initialise(model: nn.Module, config: DictConfig) -> list[str]:
    """Load ``config.model.init``'s weights into a freshly built ``model``; returns the lines to log."""
    from mstt.bundled import resolve_model
    from mstt.checkpoints import read_checkpoint
    from mstt.train.checkpoint import clean_state_dict

    spec = str(config.model.init)
    path, name = resolve_model(spec, where="model.init=", how="set model.init to a checkpoint, e.g. runs/NAME/checkpoints/best.pt")
    what = f"model.init={spec}" + ("" if name is None else f" ({path})")
    data = read_checkpoint(path)
    _check_front_end(data["recipe"], config, what)
    saved = clean_state_dict(data["model"])
    there = list(_select(data["recipe"], "data.sources") or [])
    here = list(model.sources)
    reinit = source_dependent_heads(model, config) if there != here else set()
    own = model.state_dict()
    fresh, new = _sort(own, saved, reinit, what)
    keep = fresh | new
    model.load_state_dict({k: own[k] if _head(k) in keep else saved[k] for k in own})  # copy_ casts float16
    loaded = sorted({h for h in (_head(k) for k in own) if h is not None} - keep)
    lines = [f"model.init: weights from {name or path} (step {int(data.get('step', 0) or 0)} there), "
             f"trunk{' and heads ' + ', '.join(loaded) if loaded else ''} loaded; training starts at step 0 "
             "with a fresh optimiser"]
    if fresh:
        why = (f"their shapes depend on the sources: {', '.join(there)} there, {', '.join(here)} here" if there != here
               else "their options differ from the init file's")
        lines.append(f"model.init: re-initialised heads {', '.join(sorted(fresh))} ({why})")
    if new:
        lines.append(f"model.init: heads {', '.join(sorted(new))} start afresh ({Path(path).name} has none)")
    return lines
