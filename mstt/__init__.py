"""mstt: music source separation and transcription with one multi-task network."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import TYPE_CHECKING

from mstt.hookspecs import hookimpl

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from mstt.inference import Separator

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "load"]


def _silence_pyfluidsynth() -> None:
    """Import pyfluidsynth once with stdout captured, where it would print a line about its library."""
    # pyfluidsynth prints where it found libfluidsynth on stdout whenever $CI is set, at its first
    # import (pretty_midi triggers it). In piped output (`mstt models | ...`, a test reading a child
    # process) that line is noise, so under $CI it is imported here first, quietly; elsewhere this
    # costs nothing. A missing library is reported later, where it is needed.
    if not os.environ.get("CI") or "fluidsynth" in sys.modules:
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(ImportError, OSError):
        import fluidsynth  # noqa: F401


_silence_pyfluidsynth()


def load(path: str | Path | None = None, device: str | torch.device | None = None) -> Separator:
    """Load a model for separation: ``mstt.load().separate(x, sr)`` (the bundled ``default``), ``mstt.load("best.pt")``.

    ``path`` is a bundled model's name (``mstt models`` lists them; None: ``default``) or a
    checkpoint or exported model file.
    """
    # Imported here so that ``import mstt`` (plugins, the CLI) does not pay for torch and scipy.
    from mstt.inference import load as _load

    return _load(path, device)
