"""Property-based: random overrides on the demo recipe give a model or one RecipeError naming the key.

``recipes/cerberus_set4.yaml recipes/quick.yaml`` plus one or two ``key=value`` overrides, the
keys taken from the schema (every field of mstt.recipe's dataclasses, the sections themselves,
and the option fields of the components the recipe uses), the values of the wrong type,
negative, zero, huge, NaN, infinite, empty or random text. Through ``load_recipe`` and
``build_model``, the property is: a model with the recipe's sources and rate, or an MsttError
whose one line names one of the keys overridden. Huge sizes are built under a cap on the
address space (2 GiB above what the process holds), so that an allocation the size of the
machine fails at once instead of swapping it out.
"""

from __future__ import annotations

import dataclasses
import resource
import typing
from contextlib import contextmanager
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from mstt.errors import MsttError
from mstt.nn.build import build_model
from mstt.plugins import get_registry
from mstt.recipe import Recipe, load_recipe
from tests.fuzz_audio import examples

EXAMPLES = examples(100)
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
FILES = [RECIPES / "cerberus_set4.yaml", RECIPES / "quick.yaml"]


def schema_keys(cls: type, prefix: str = "") -> list[str]:
    """Dotted keys of a schema dataclass: every field (sections too), nested dataclasses expanded."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        keys.append(key)
        kind = hints[f.name]
        inner = [a for a in typing.get_args(kind) if dataclasses.is_dataclass(a)]  # Optional[SeparatorConfig]
        target = kind if dataclasses.is_dataclass(kind) else (inner[0] if inner else None)
        if target is not None:
            keys += schema_keys(target, f"{key}.")
        if typing.get_origin(kind) is dict and dataclasses.is_dataclass(typing.get_args(kind)[1]):
            for head in ("dc", "mi", "tr", "new"):  # Dict[str, HeadConfig]: the recipe's heads and a new one
                keys += schema_keys(typing.get_args(kind)[1], f"{key}.{head}.")
    return keys


def option_keys() -> list[str]:
    """Option fields of the components the demo recipe uses (encoder, heads, losses, dataset)."""
    registry = get_registry()
    config = load_recipe(FILES)
    keys = []
    places = [("encoders", config.model.encoder.name, "model.encoder.options"),
              ("datasets", config.data.kind, "data.options")]
    for key, head in config.model.heads.items():
        comp = registry.get("heads", head.name or key)
        places += [("heads", comp.name, f"model.heads.{key}.options"),
                   ("losses", head.loss or comp.info["loss"], f"model.heads.{key}.loss_options")]
    for kind, name, where in places:
        schema = registry.get(kind, name).options
        keys += [f"{where}.{f.name}" for f in dataclasses.fields(schema)] if schema else []
    return keys


KEYS = sorted(set(schema_keys(Recipe)) | set(option_keys()))
VALUES = st.one_of(
    st.sampled_from(["nan", ".nan", "-nan", "inf", "-inf", "0", "-1", "0.0", "-0.5", "1e-30", "-1e-9", "1",
                     "1e18", "2147483647", "9223372036854775807", "99999999999999999999999", "1e308", "-1e308",
                     "''", '""', "' '", "null", "true", "false", "[]", "{}", "[1, 2]", "{a: 1}", "[nan]",
                     "abc", "piano", "[piano, piano]", "[drums]", "softmax", "cuda:7",
                     "${nope}", "${data.sample_rate}", "${oc.env:NO_SUCH_VARIABLE}", "'${'"]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(repr),
    st.text(max_size=8),
)
OVERRIDES = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=2)


def names_of(key: str) -> list[str]:
    """How a message may name an overridden key: the key, its leaf, or a section it sits in
    ('model.separator.loss=nan' creates a separator: 'model.separator: a separator recipe trains no heads')."""
    parts = key.split(".")
    return [key, parts[-1]] + [".".join(parts[:i]) for i in range(2, len(parts))]


@contextmanager
def address_space_cap(extra_bytes: int = 2 << 30):
    """Cap the address space at what the process maps now plus ``extra_bytes`` (restored after)."""
    vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
    old = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm + extra_bytes, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)


def test_the_keys_cover_the_schema():
    assert {"optim.lr", "data.crop_seconds", "model.heads.dc.train_frames", "model.separator.name",
            "trainer.precision", "eval.note_threshold", "model.encoder.options.hidden_size"} <= set(KEYS)


@settings(max_examples=EXAMPLES, deadline=None)
@given(overrides=OVERRIDES)
# A control character in a value made the YAML parser's ReaderError escape load_recipe.
@example(overrides=[("data", "\x1f")])
# torch's RuntimeError for a negative size and for one the machine has no memory for escaped build_model.
@example(overrides=[("model.heads.dc.options.embedding_dim", "-1")])
@example(overrides=[("model.heads.dc.options.embedding_dim", "4106")])
# A size past int64 made torch raise a ValueError whose text went on with a C++ stack trace.
@example(overrides=[("model.encoder.options.hidden_size", "2305843009213693952")])
# An interpolation naming no key escaped load_recipe as omegaconf's InterpolationKeyError.
@example(overrides=[("optim.weight_decay", "${nope}")])
# A list given for a mapping made omegaconf's plain TypeError ("Cannot merge incompatible container types") escape.
@example(overrides=[("model.heads.dc.options", "[piano, piano]")])
# A ${...} of the wrong type for its node: omegaconf names no key, so the first failing interpolation is named.
@example(overrides=[("model.heads.dc.loss_options", "${optim.weight_decay}")])
@example(overrides=[("optim.lr", "nan")])
@example(overrides=[("data.crop_seconds", ".nan")])
def test_recipe_overrides_build_a_model_or_name_the_key(overrides: list[tuple[str, str]]):
    texts = [f"{key}={value}" for key, value in overrides]
    try:
        config = load_recipe(FILES, texts)
        with address_space_cap():
            model = build_model(config)
    except MsttError as exc:
        message = str(exc)
        assert "\n" not in message, message
        named = [key for key, _ in overrides if any(name in message for name in names_of(key))]
        assert named, f"{message!r} names none of {[k for k, _ in overrides]}"
        return
    assert list(model.sources) == list(config.data.sources)
    assert model.sample_rate == config.data.sample_rate
    assert OmegaConf.is_config(config)
