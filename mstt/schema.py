"""The recipe schema: one dataclass per section (typed, with defaults), read by omegaconf.

:mod:`mstt.recipe` loads and merges recipe files into it; each component's own ``options`` are
checked against the dataclass it registered (:func:`mstt.recipe.component_options`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from mstt.constants import EVAL_CHUNK_SECONDS


@dataclass
class DataConfig:
    """Where examples come from and which sources they hold."""

    kind: str = "synth"  # a registered dataset adapter
    root: Optional[str] = None  # dataset folder; None with kind synth = generated into $MSTT_CACHE
    sources: List[str] = field(default_factory=lambda: ["piano", "guitar"])
    sample_rate: int = 16000
    crop_seconds: float = 2.0  # training crop length
    eval_segment_seconds: Optional[float] = None  # None: whole tracks at evaluation
    options: Dict[str, Any] = field(default_factory=dict)  # the adapter's own options
    gain_augment_db: float = 0.0  # training crops: each source at a random gain within ±N dB, mixture re-summed; 0: off
    eq_augment_db: float = 0.0  # training crops: each source through a random smooth EQ within ±N dB; 0: off


@dataclass
class FeaturesConfig:
    """STFT and the encoder's input features."""

    n_fft: int = 1024
    hop_length: int = 256
    window: str = "hann"
    compression: str = "log"  # none | log | sqrt
    normalization: str = "utterance"  # none | utterance | frequency


@dataclass
class ComponentConfig:
    """A registered component and its options."""

    name: str = "blstm"
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class HeadConfig:
    """One head: registry name (default: its key), loss weight, loss and options."""

    name: Optional[str] = None
    weight: float = 1.0  # 0 drops the head
    loss: Optional[str] = None  # None: the head's default loss
    options: Dict[str, Any] = field(default_factory=dict)
    loss_options: Dict[str, Any] = field(default_factory=dict)
    # Fraction of frames the head's loss sees per training step (a fresh random subset each
    # step; inference always uses every frame). Below 1 only for heads registered frame_local.
    train_frames: float = 1.0


@dataclass
class SeparatorConfig:
    """A whole waveform separator (registered under ``separators``) and its waveform loss."""

    name: str = "convtasnet"
    options: Dict[str, Any] = field(default_factory=dict)
    loss: str = "waveform"
    loss_options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """One trunk and a mapping of heads, or a whole separator instead."""

    encoder: ComponentConfig = field(default_factory=ComponentConfig)
    heads: Dict[str, HeadConfig] = field(default_factory=dict)
    separator: Optional[SeparatorConfig] = None  # set: a baseline separator replaces trunk + heads
    # Fine-tuning: a bundled model's name or a checkpoint whose weights a fresh run starts from (mstt.train.init)
    init: Optional[str] = None


# The one pseudo-head of a separator model: its loss is logged (and monitored) as loss/separator.
SEPARATOR_HEAD = "separator"


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule."""

    name: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only: plain SGD is too slow for recurrent trunks
    grad_clip: float = 5.0  # max global gradient norm; 0 disables clipping
    schedule: str = "plateau"  # none | plateau | cosine | step
    schedule_options: Dict[str, Any] = field(default_factory=dict)


OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class PlateauOptions:
    """``optim.schedule_options`` of ``plateau``: reduce on plateau of the monitored validation metric."""

    factor: float = 0.5
    patience: int = 3  # validations
    threshold: float = 1e-4
    min_lr: float = 0.0


@dataclass
class CosineOptions:
    """``optim.schedule_options`` of ``cosine``: warm-up, then decay over max_steps or max_minutes, whichever ends first."""

    warmup_steps: int = 0
    min_lr: float = 0.0


@dataclass
class StepOptions:
    """``optim.schedule_options`` of ``step``: step decay."""

    step_size: int | None = None  # steps; None = max_steps // 3
    gamma: float = 0.1

    def size(self, max_steps: int) -> int:
        """The step size in steps, with the default resolved against ``max_steps``."""
        return self.step_size if self.step_size is not None else max(1, max_steps // 3)


# Schedule name -> the schema of its options (None: it takes none).
SCHEDULES: dict[str, type | None] = {
    "none": None,
    "plateau": PlateauOptions,
    "cosine": CosineOptions,
    "step": StepOptions,
}


@dataclass
class TrainerConfig:
    """The training loop."""

    max_steps: int = 100_000
    max_minutes: Optional[float] = None  # wall-clock budget; stops at whichever comes first
    batch_size: int = 8
    validate_every: int = 1000
    patience: int = 10  # validations without improvement before early stopping; 0 disables
    monitor: str = "loss"  # validation metric that picks best.pt
    monitor_mode: str = "min"  # min | max
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto: bf16 autocast on CUDA and on CPUs with native bf16 (avx512_bf16 / AMX), else fp32;
    # bf16 or fp32 force it. Weights, optimizer state and checkpoints stay float32 either way.
    precision: str = "auto"
    amp: bool = True  # false: the older spelling of precision=fp32
    compile: bool = False  # torch.compile the model
    num_workers: int = 2
    seed: int = 0
    log_every: int = 50
    save_every_minutes: float = 5.0  # also write last.pt this often between validations; 0: only at validations


@dataclass
class EvalConfig:
    """The shared evaluation."""

    split: str = "test"
    metrics: List[str] = field(default_factory=lambda: ["si_sdr", "sdr", "transcription"])
    bss_eval: bool = False  # SIR/SAR through mir_eval; slow
    note_threshold: float = 0.4  # a note starts where a key's roll probability passes this
    # ... and lasts while it stays above this (hysteresis); null: note_threshold (no hysteresis)
    note_hold_threshold: Optional[float] = None
    min_note_frames: int = 2
    max_examples: Optional[int] = None
    report_examples: int = 3
    batch_size: int = 4  # windows scored together; waveform separators on CPU want 1 (memory)
    chunk_seconds: float = EVAL_CHUNK_SECONDS  # long tracks run through the model in chunks of this length


@dataclass
class Recipe:
    """A whole experiment: data, features, model, optimiser, trainer, evaluation."""

    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
