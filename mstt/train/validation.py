"""Validation during training: mean losses over the validation set, divergence and improvement tests."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from mstt.errors import MsttError
from mstt.train import distributed as D


def validation_losses(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    amp: bool,
    ctx: D.DistContext,
    heads: list[str],
) -> dict[str, float]:
    """Mean weighted total and per-head losses over the whole validation set (all ranks)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(len(heads) + 2, dtype=torch.float64, device=device)
    with torch.no_grad():
        for groups in loader:
            for batch in groups:
                batch = D.to_device(batch, device)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                    total, per_head = model.losses(batch)
                n = batch["mixture"].shape[0]
                sums[:-1] += torch.stack([total] + [per_head[h] for h in heads]).double() * n
                sums[-1] += n
    model.train(was_training)
    D.all_reduce_sum(sums, ctx)
    values = sums.tolist()
    count = values[-1]
    means = [v / count for v in values[:-1]]
    return {"loss": means[0], **{f"loss/{h}": v for h, v in zip(heads, means[1:])}}


def is_better(value: float, best: dict[str, Any], mode: str) -> bool:
    """Whether ``value`` beats the best so far in direction ``mode`` (min | max); the first always does."""
    if best.get("value") is None:
        return True
    return value < best["value"] if mode == "min" else value > best["value"]


def non_finite(values: list[float], heads: list[str]) -> tuple[str, float] | None:
    """The first head whose loss is NaN/inf (or the weighted total when no head is)."""
    for head, value in zip(heads, values[1:]):
        if not math.isfinite(value):
            return f"head '{head}'", value
    return ("the weighted total", values[0]) if not math.isfinite(values[0]) else None


def check_finite(values: list[float], heads: list[str], when: str, last_path: Path, saved_step: int | None) -> None:
    """Stop with one line when a loss is NaN/inf: where, which head, and which checkpoint is kept."""
    bad = non_finite(values, heads)
    if bad is None:
        return
    kept = (f"{last_path} from step {saved_step} is kept" if saved_step is not None
            else "no checkpoint was written before it")
    raise MsttError(
        f"{when}: the loss of {bad[0]} is {bad[1]}; training diverged ({kept}); lower optim.lr or optim.grad_clip"
    )
