"""Checkpoints: atomic writes, ``weights_only`` loading, RNG states and resume checks.

A checkpoint is a plain dict (loadable with ``torch.load(path, weights_only=True)``)::

    format: "mstt-checkpoint"   format_version: 1
    mstt_version, plugins {distribution: version}, recipe (resolved, plain containers)
    model (state_dict without DDP/compile prefixes), optimizer, scheduler
    rng {torch, cuda, numpy, python}, step, epoch, epoch_batches, elapsed (seconds)
    best {metric, value, step}, finished, stopped, history (validation rows)
"""

from __future__ import annotations

import fnmatch
import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mstt.errors import MsttError
from mstt.fileio import write_error, write_text_atomic  # noqa: F401  (write_text_atomic: re-exported for the loop)

CHECKPOINT_FORMAT = "mstt-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1

# Recipe fields that may change between a run and its resume: budgets and machinery that
# do not change what is being trained. ``eval.*`` is a prefix.
RESUME_IGNORED = (
    "trainer.max_steps",
    "trainer.max_minutes",
    "trainer.device",
    "trainer.num_workers",
    "trainer.compile",
    "trainer.precision",  # numerics only: weights and optimizer state stay float32
    "trainer.amp",
    "model.heads.*.train_frames",  # which frames a loss sees; the weights are the same
    "model.encoder.options.fp32",  # numerics only, as trainer.precision
    "trainer.log_every",
    "trainer.save_every_minutes",
    "model.init",  # where a fresh run's weights came from; a resumed run continues from last.pt
    "eval.",
)

_PREFIXES = ("module.", "_orig_mod.")


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; some filesystems do not allow opening a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(payload: dict[str, Any], path: Path, flag: str = "--out") -> None:
    """Write ``payload`` to ``path`` atomically: temp file, fsync, ``os.replace``.

    A crash at any instant leaves either the previous file or the new one; a failure while
    writing (disk full, permissions) leaves the previous file and raises a one-line MsttError.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        error = write_error(path, exc, flag)  # flag: where the user chose the place (--out, OUT)
        raise MsttError(f"{error} (the previous checkpoint is intact)") from None
    _fsync_dir(path.parent)


def _torch_load(path: Path, map_location: str | torch.device) -> Any:
    """``torch.load(weights_only=True)`` with its failures as one-line MsttErrors naming ``path``."""
    not_torch = f"{path} is not a torch checkpoint; pass a checkpoints/*.pt file written by mstt run or mstt export"
    with open(path, "rb") as f:
        head = f.read(4)
    # torch writes a zip archive (PK..), or before 1.6 a pickle (protocol byte 0x80): other bytes are no torch file.
    if head != b"PK\x03\x04" and head[:1] != b"\x80":
        raise MsttError(not_torch)
    try:
        with warnings.catch_warnings():
            # torch warns (two lines) about old pickle protocols before it fails; our one line says it all.
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a plain pickle, unsafe objects, or truncated
        text = str(exc)
        if "magic number" in text.lower() or "Unsupported operand" in text:
            raise MsttError(not_torch) from None  # a pickle that torch did not write, or bytes that begin like one
        reason = ("it holds objects that are not plain tensors and containers" if "Weights only load failed" in text
                  else "it is truncated or damaged")
        raise MsttError(f"{path}: not a readable mstt checkpoint ({reason}); pass a checkpoints/*.pt file written by mstt") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read an mstt checkpoint with ``weights_only=True`` and check its format."""
    path = Path(path)
    if not path.is_file():
        raise MsttError(f"{path}: no such checkpoint")
    data = _torch_load(path, map_location)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise MsttError(f"{path}: not an mstt checkpoint (no format '{CHECKPOINT_FORMAT}')")
    version = data.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise MsttError(
            f"{path}: checkpoint format_version {version} is newer than this mstt reads "
            f"({CHECKPOINT_FORMAT_VERSION}); upgrade mstt"
        )
    return data


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DistributedDataParallel (``module.``) and torch.compile (``_orig_mod.``) prefixes."""
    cleaned = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        cleaned[key] = value
    return cleaned


def _shape(value: Any) -> str:
    return "x".join(map(str, value.shape)) if value.dim() else "a scalar"


def load_model_weights(model: torch.nn.Module, state: dict[str, Any], path: Path, hint: str = "") -> None:
    """Load ``state`` into ``model``; a mismatch is one line naming the parameter (and both shapes).

    torch's own message lists every mismatch over many lines; the first one names the problem.
    """
    state = clean_state_dict(state)
    own = model.state_dict()
    lead = f"{path}: its weights do not fit the model its recipe builds ({hint}"
    for key, value in state.items():
        if key in own and isinstance(value, torch.Tensor) and value.shape != own[key].shape:
            raise MsttError(f"{lead}parameter {key} is {_shape(value)} in the checkpoint but {_shape(own[key])} in the model)")
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    if unexpected or missing:
        which = (f"the checkpoint has {unexpected[0]}, which the model lacks" if unexpected
                 else f"the checkpoint lacks {missing[0]}")
        more = len(unexpected) + len(missing) - 1
        raise MsttError(f"{lead}{which}" + (f", and {more} more mismatches)" if more else ")"))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # e.g. a tensor that is not a tensor
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MsttError(f"{lead}{first})") from None


# ------------------------------------------------------------------ RNG


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """Every RNG the loop uses, as tensors and ints only (so ``weights_only`` loading works).

    Only the training GPU's CUDA state is kept: asking for every GPU's state would create a
    CUDA context (and take memory) on GPUs that other processes train on.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    on_cuda = device is not None and device.type == "cuda"
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(device)] if on_cuda else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "internal": [int(x) for x in internal], "gauss_next": gauss_next},
    }


def set_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Restore what :func:`rng_state` saved (the CUDA state only when training on a GPU)."""
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda") or []
    if cuda and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda[0].cpu(), device)
    n = state["numpy"]
    keys = n["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


# --------------------------------------------------------------- resume


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``{"a.b.c": leaf}``; lists stay whole values."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value}


def _ignored(key: str) -> bool:
    return any(
        key == k or (k.endswith(".") and key.startswith(k)) or ("*" in k and fnmatch.fnmatchcase(key, k))
        for k in RESUME_IGNORED
    )


def recipe_difference(saved: dict[str, Any], current: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first key whose value differs between two recipes (ignoring resumable fields)."""
    old, new = _flatten(saved), _flatten(current)
    missing = object()
    for key in list(new) + [k for k in old if k not in new]:
        if _ignored(key):
            continue
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            return key, (None if a is missing else a), (None if b is missing else b)
    return None


def check_same_recipe(saved: dict[str, Any], current: dict[str, Any], out: Path) -> None:
    """Refuse to resume a run folder that holds a different recipe, naming the first difference."""
    diff = recipe_difference(saved, current)
    if diff is not None:
        key, there, here = diff
        raise MsttError(
            f"{out} holds a run of a different recipe ({key}: {there!r} there, {here!r} here); "
            f"use another --out, or the same recipe to resume"
        )
