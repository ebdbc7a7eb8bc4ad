"""mstt: music source separation and transcription with one multi-task network."""

from mstt.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
