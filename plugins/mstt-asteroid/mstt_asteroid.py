"""mstt plugin: asteroid's waveform separators (ConvTasNet, DPRNN, SuDORMRF) as mstt separators.

Each factory follows the ``mstt_register_separators`` contract: ``factory(n_sources,
sample_rate, options) -> nn.Module`` mapping a mixture ``(batch, samples)`` to source
waveforms ``(batch, sources, samples)``. The returned module is asteroid's own model, so its
state dict keys are asteroid's. The option defaults are asteroid's constructor defaults, which
follow each model's paper (sizes in samples: a 16-sample kernel is 1 ms at 16 kHz).

asteroid is imported when a model is built, not when the plugin loads: every ``mstt`` command
builds the registry, and asteroid's import pulls huggingface_hub and requests. Its absence is
still reported at load time (by ``mstt plugins``), with the command that installs it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, fields
from typing import Any, Optional

from torch import nn

from mstt import hookimpl

ASTEROID_VERSION = "0.7.0"
INSTALL_HINT = (
    f"pip install --no-deps asteroid=={ASTEROID_VERSION} && pip install asteroid-filterbanks julius "
    "huggingface_hub requests pandas (or run `make setup`)"
)

for _module in ("asteroid", "asteroid_filterbanks"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f"{_module} is not installed; install it with: {INSTALL_HINT}")


@dataclass
class ConvTasNetOptions:
    """ConvTasNet (Luo & Mesgarani 2019): learned encoder, TCN masker, learned decoder."""

    n_filters: int = 512  # N: encoder filters
    kernel_size: int = 16  # L: encoder window, in samples
    stride: int = 8  # encoder hop, in samples
    bn_chan: int = 128  # B: bottleneck channels
    hid_chan: int = 512  # H: channels inside each convolutional block
    skip_chan: int = 128  # Sc: skip-connection channels
    conv_kernel_size: int = 3  # P
    n_blocks: int = 8  # X: blocks per repeat (dilations 1 .. 2^(X-1))
    n_repeats: int = 3  # R
    norm_type: str = "gLN"
    mask_act: str = "sigmoid"
    causal: bool = False


@dataclass
class DPRNNOptions:
    """DPRNN-TasNet (Luo, Chen & Yoshioka 2020): dual-path RNN masker over chunks of frames."""

    n_filters: int = 64
    kernel_size: int = 16
    stride: int = 8
    bn_chan: int = 128
    hid_size: int = 128  # RNN units per direction
    chunk_size: int = 100  # frames per chunk (intra-chunk RNN)
    hop_size: Optional[int] = None  # None: chunk_size // 2
    n_repeats: int = 6  # dual-path blocks
    norm_type: str = "gLN"
    mask_act: str = "sigmoid"
    bidirectional: bool = True
    rnn_type: str = "LSTM"  # RNN | LSTM | GRU
    num_layers: int = 1
    dropout: float = 0.0


@dataclass
class SuDORMRFOptions:
    """SuDoRM-RF (Tzinis et al. 2020): successive down-sampling and resampling of multi-resolution features."""

    n_filters: int = 512
    kernel_size: int = 21
    stride: Optional[int] = None  # None: kernel_size // 2
    bn_chan: int = 128
    num_blocks: int = 16  # U-ConvBlocks
    upsampling_depth: int = 4  # resolutions per block
    improved: bool = True  # the improved variant (relu mask, 2021 paper); False: the original (softmax mask)
    mask_act: Optional[str] = None  # None: the variant's default


def _checked(options: Any, *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options as keyword arguments; sizes must be positive (asteroid fails obscurely otherwise)."""
    kwargs = {f.name: getattr(options, f.name) for f in fields(options)}
    for name, value in kwargs.items():
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"{name}: {value} must be at least 1")
    for name in optional:
        if kwargs[name] is None:
            del kwargs[name]  # let asteroid apply its own default
    return kwargs


def _models() -> Any:
    """asteroid.models, imported on first use."""
    try:
        import asteroid.models as models
    except ImportError as exc:  # e.g. a dependency asteroid imports is missing
        raise ImportError(f"asteroid.models does not import ({exc}); install with: {INSTALL_HINT}") from exc
    return models


def convtasnet(n_sources: int, sample_rate: int, options: ConvTasNetOptions) -> nn.Module:
    """ConvTasNet (asteroid): mixture (B, samples) -> sources (B, S, samples)."""
    kwargs = _checked(options)
    if kwargs["stride"] > kwargs["kernel_size"]:
        raise ValueError(f"stride {kwargs['stride']} exceeds kernel_size {kwargs['kernel_size']}: samples would be skipped")
    return _models().ConvTasNet(n_src=n_sources, sample_rate=sample_rate, **kwargs)


def dprnn(n_sources: int, sample_rate: int, options: DPRNNOptions) -> nn.Module:
    """DPRNN-TasNet (asteroid): mixture (B, samples) -> sources (B, S, samples)."""
    kwargs = _checked(options, optional=("hop_size",))
    if kwargs["rnn_type"] not in ("RNN", "LSTM", "GRU"):
        raise ValueError(f"rnn_type: '{kwargs['rnn_type']}'; use RNN, LSTM or GRU")
    if not 0.0 <= kwargs["dropout"] < 1.0:
        raise ValueError(f"dropout: {kwargs['dropout']} must be in [0, 1)")
    return _models().DPRNNTasNet(n_src=n_sources, sample_rate=sample_rate, **kwargs)


def sudormrf(n_sources: int, sample_rate: int, options: SuDORMRFOptions) -> nn.Module:
    """SuDoRM-RF (asteroid, improved variant by default): mixture (B, samples) -> sources (B, S, samples)."""
    kwargs = _checked(options, optional=("stride", "mask_act"))
    models = _models()
    cls = models.SuDORMRFImprovedNet if kwargs.pop("improved") else models.SuDORMRFNet
    return cls(n_src=n_sources, sample_rate=sample_rate, **kwargs)


@hookimpl
def mstt_register_separators(register) -> None:
    """Register convtasnet, dprnn and sudormrf."""
    register("convtasnet", convtasnet, options=ConvTasNetOptions)
    register("dprnn", dprnn, options=DPRNNOptions)
    register("sudormrf", sudormrf, options=SuDORMRFOptions)
