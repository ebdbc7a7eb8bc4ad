"""mstt: music source separation and transcription with one multi-task network."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mstt.hookspecs import hookimpl

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from mstt.inference import Separator

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "load"]


def load(path: str | Path | None = None, device: str | torch.device | None = None) -> Separator:
    """Load a model for separation: ``mstt.load().separate(x, sr)`` (the bundled ``default``), ``mstt.load("best.pt")``.

    ``path`` is a bundled model's name (``mstt models`` lists them; None: ``default``) or a
    checkpoint or exported model file.
    """
    # Imported here so that ``import mstt`` (plugins, the CLI) does not pay for torch and scipy.
    from mstt.inference import load as _load

    return _load(path, device)
