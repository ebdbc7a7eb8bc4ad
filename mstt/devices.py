"""Device names -> torch devices, shared by training, evaluation and inference."""

from __future__ import annotations

import torch

from mstt.errors import MsttError


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when a GPU is visible, else CPU; ``cuda``/``cuda:N`` must exist."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise MsttError(
                f"trainer.device: {spec} asked for but no GPU is visible; use trainer.device=auto or cpu"
            )
        device = torch.device(spec)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MsttError(
                f"trainer.device: {spec} asked for but only {torch.cuda.device_count()} GPU(s) are visible"
            )
        return device
    raise MsttError(f"trainer.device: '{spec}' is not a device; use auto, cpu, cuda or cuda:N")
