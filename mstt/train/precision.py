"""Which arithmetic a training step uses: bf16 autocast where the hardware has it, else fp32.

Autocast only changes the dtype of the matmuls and what follows them inside the step; the
weights, the optimizer state and every checkpoint stay float32, so a run may resume under
another precision. On CPUs without native bfloat16 instructions (avx512_bf16 or AMX) bf16 is
emulated and slower than fp32, which is why ``auto`` checks for them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from mstt.errors import MsttError

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The native-bfloat16 instruction sets this CPU lists in /proc/cpuinfo (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return tuple(f for f in CPU_BF16_FLAGS if f in flags)
    return ()


def device_has_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 natively (a GPU that supports it, or a CPU with the flags)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(cpu_bf16_flags())


@dataclass(frozen=True)
class Precision:
    """The resolved precision of a run: ``bf16`` (autocast) or ``fp32``, and why."""

    name: str
    reason: str

    @property
    def autocast(self) -> bool:
        """Whether steps run under ``torch.autocast(dtype=bfloat16)``."""
        return self.name == "bf16"


def resolve_precision(requested: str, amp: bool, device: torch.device) -> Precision:
    """``trainer.precision`` (auto | bf16 | fp32) and the older ``trainer.amp`` on ``device``."""
    if requested not in ("auto", "bf16", "fp32"):
        raise MsttError(f"trainer.precision: '{requested}' is not a precision; use auto, bf16 or fp32")
    native = device_has_bf16(device)
    what = "this GPU" if device.type == "cuda" else "this CPU"
    if requested == "bf16":
        if not amp:
            raise MsttError("trainer.amp: false contradicts trainer.precision: bf16; drop trainer.amp")
        if not native:
            supported = "has no native bfloat16" if device.type == "cuda" else (
                f"lacks {' and '.join(CPU_BF16_FLAGS)}")
            raise MsttError(f"trainer.precision: bf16, but {what} {supported}; it supports fp32 (use auto or fp32)")
        return Precision("bf16", "trainer.precision=bf16")
    if requested == "fp32" or not amp:
        return Precision("fp32", "trainer.precision=fp32" if requested == "fp32" else "trainer.amp=false")
    if native:
        flags = "" if device.type == "cuda" else f" ({', '.join(cpu_bf16_flags())})"
        return Precision("bf16", f"auto: {what} has native bfloat16{flags}")
    return Precision("fp32", f"auto: {what} has no native bfloat16, bf16 would be slower")
