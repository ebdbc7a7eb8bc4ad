"""mstt: music source separation and transcription with one multi-task network."""

__version__ = "0.1.0"
