"""Spectrogram front end and training targets on the STFT frame grid."""

from mstt.features.stft import STFT, FrontEnd
from mstt.features.targets import Targets, make_targets

__all__ = ["STFT", "FrontEnd", "Targets", "make_targets"]
