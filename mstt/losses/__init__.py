"""Per-head losses; the model's loss is their sum weighted by the recipe (alpha, beta, gamma)."""

from __future__ import annotations

from mstt import hookimpl
from mstt.losses.deep_clustering import DeepClusteringLoss, DeepClusteringLossOptions, deep_clustering_loss
from mstt.losses.mask_inference import MaskInferenceLoss, MaskInferenceLossOptions, mask_inference_loss
from mstt.losses.transcription import TranscriptionLoss, TranscriptionLossOptions, transcription_loss
from mstt.losses.waveform import WaveformLoss, WaveformLossOptions

__all__ = [
    "DeepClusteringLoss",
    "MaskInferenceLoss",
    "TranscriptionLoss",
    "WaveformLoss",
    "deep_clustering_loss",
    "mask_inference_loss",
    "transcription_loss",
]


@hookimpl
def mstt_register_losses(register) -> None:
    """Register the built-in losses."""
    register("deep_clustering", DeepClusteringLoss, options=DeepClusteringLossOptions)
    register("mask_inference", MaskInferenceLoss, options=MaskInferenceLossOptions)
    register("transcription", TranscriptionLoss, options=TranscriptionLossOptions)
    register("waveform", WaveformLoss, options=WaveformLossOptions)
