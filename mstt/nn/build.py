"""Build a MultiTaskModel from a validated recipe through the registry."""

from __future__ import annotations

from omegaconf import DictConfig

from mstt.checks import validate_recipe
from mstt.errors import RecipeError
from mstt.features import FrontEnd
from mstt.nn.model import HeadSpec, MultiTaskModel
from mstt.nn.separator import OUTPUT as SEPARATOR_OUTPUT
from mstt.nn.separator import SeparatorModel
from mstt.plugins import get_registry
from mstt.recipe import active_heads, component_options
from mstt.registry import Registry
from mstt.schema import SEPARATOR_HEAD


def _construct(what: str, factory, *args, sizes: str = "its options"):
    """Call a component factory; a ValueError from its checks becomes a recipe error.

    So does torch refusing a size: a negative one, or one the machine has no memory for
    (``embedding_dim=4106`` asks for 2 GB, ``n_fft=2**31`` for more).
    """
    try:
        return factory(*args)
    except (ValueError, TypeError) as exc:
        if len(str(exc).strip().splitlines()) == 1:  # a component's own check: its message names the option
            raise RecipeError(f"{what}: {exc}") from None
        # torch's own ValueError (a size past int64) carries a C++ stack trace after its first line.
        raise RecipeError(f"{what}: cannot be built ({_first_line(exc)}); check the sizes in {sizes}") from None
    except (RuntimeError, MemoryError) as exc:
        text = _first_line(exc)
        reason = "out of memory" if "allocate" in text or isinstance(exc, MemoryError) else text
        raise RecipeError(f"{what}: cannot be built ({reason}); check the sizes in {sizes}") from None


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's text (at most 160 characters), or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def build_front_end(config: DictConfig) -> FrontEnd:
    """The STFT front end the recipe's features section describes."""
    f = config.features
    return _construct("features", FrontEnd, f.n_fft, f.hop_length, f.window, f.compression, f.normalization,
                      sizes="features.n_fft")


def build_separator(config: DictConfig, registry: Registry) -> SeparatorModel:
    """A registered whole-waveform separator wrapped with its waveform loss."""
    cfg = config.model.separator
    comp = registry.get("separators", cfg.name, where="model.separator.name")
    options = component_options(comp.options, cfg.options, "model.separator.options")
    sources = list(config.data.sources)
    module = _construct(
        f"model.separator ({comp.name})", comp.factory, len(sources), config.data.sample_rate, options,
        sizes="model.separator.options",
    )
    loss_comp = registry.get("losses", cfg.loss, where="model.separator.loss")
    loss_options = component_options(loss_comp.options, cfg.loss_options, "model.separator.loss_options")
    loss = _construct(f"model.separator.loss ({loss_comp.name})", loss_comp.factory, loss_options)
    spec = HeadSpec(key=SEPARATOR_HEAD, name=comp.name, output=SEPARATOR_OUTPUT, weight=1.0, loss=loss)
    return SeparatorModel(module, spec, sources, config.data.sample_rate)


def build_model(config: DictConfig, registry: Registry | None = None) -> MultiTaskModel | SeparatorModel:
    """Validate the recipe and assemble its trunk and active heads (or its separator)."""
    registry = registry or get_registry()
    validate_recipe(config, registry)
    if config.model.separator is not None:
        return build_separator(config, registry)
    front_end = build_front_end(config)
    n_freq = front_end.n_freq
    sources = list(config.data.sources)

    enc_cfg = config.model.encoder
    enc = registry.get("encoders", enc_cfg.name, where="model.encoder.name")
    enc_options = component_options(enc.options, enc_cfg.options, "model.encoder.options")
    encoder = _construct(f"model.encoder ({enc.name})", enc.factory, n_freq, enc_options,
                         sizes=f"model.encoder.options and features.n_fft ({n_freq} frequency bins)")
    in_features = getattr(encoder, "out_features", None)
    if not isinstance(in_features, int):
        raise RecipeError(f"model.encoder.name: encoder '{enc.name}' (plugin {enc.plugin}) has no integer out_features")

    heads, specs = {}, {}
    for key, head_cfg in active_heads(config).items():
        where = f"model.heads.{key}"
        comp = registry.get("heads", head_cfg.name or key, where=f"{where}.name")
        options = component_options(comp.options, head_cfg.options, f"{where}.options")
        heads[key] = _construct(f"{where} ({comp.name})", comp.factory, in_features, len(sources), n_freq, options,
                               sizes=f"{where}.options and features.n_fft")
        loss_comp = registry.get("losses", head_cfg.loss or comp.info["loss"], where=f"{where}.loss")
        loss_options = component_options(loss_comp.options, head_cfg.loss_options, f"{where}.loss_options")
        loss = _construct(f"{where}.loss ({loss_comp.name})", loss_comp.factory, loss_options)
        specs[key] = HeadSpec(
            key=key,
            name=comp.name,
            output=comp.info["output"],
            weight=float(head_cfg.weight),
            loss=loss,
            activation=comp.info.get("activation"),
            decode=comp.info.get("decode"),
            train_frames=float(head_cfg.train_frames),
        )
    try:
        return MultiTaskModel(front_end, encoder, heads, specs, sources, config.data.sample_rate)
    except ValueError as exc:
        raise RecipeError(f"model.heads: {exc}") from None
