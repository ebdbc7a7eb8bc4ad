"""Recipes: merging, base files, overrides, typed validation and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mstt.bench import is_overlay
from mstt.cli import main
from mstt.errors import MsttError, RecipeError
from mstt.nn.build import build_model
from mstt.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PAPER_RECIPES = sorted(p for p in RECIPES.glob("*.yaml") if not is_overlay(p))
OVERLAYS = sorted(p for p in RECIPES.glob("*.yaml") if is_overlay(p))

WEIGHTS = {  # docs/paper.md: (alpha, beta, gamma)
    "dc": (1.0, 0.0, 0.0),
    "mi": (0.0, 1.0, 0.0),
    "tr": (0.0, 0.0, 1.0),
    "chimera": (0.5, 0.5, 0.0),
    "dc_tr": (0.2, 0.0, 0.8),
    "mi_tr": (0.0, 0.2, 0.8),
    "cerberus": (0.1, 0.1, 0.8),
}
SETS = {
    "1": ["piano", "guitar"],
    "2": ["piano", "guitar", "bass"],
    "3": ["piano", "guitar", "bass", "drums"],
    "4": ["piano", "guitar", "bass", "drums", "strings"],
}


@pytest.mark.parametrize("path", OVERLAYS, ids=lambda p: p.stem)
def test_overlays_apply_to_a_paper_recipe(path):
    config = load_recipe([RECIPES / "cerberus_set4.yaml", path])
    assert config.name == "cerberus_set4" and {p.name for p in OVERLAYS} >= {"quick.yaml", "songs.yaml"}


@pytest.mark.parametrize("path", PAPER_RECIPES, ids=lambda p: p.stem)
def test_paper_recipes_have_the_papers_weights_and_sources(path):
    config = load_recipe([path])
    model_kind, _, set_number = path.stem.rpartition("_set")
    if model_kind in WEIGHTS:
        heads = config.model.heads
        assert (heads.dc.weight, heads.mi.weight, heads.tr.weight) == WEIGHTS[model_kind]
        assert list(config.data.sources) == SETS[set_number]
    assert config.name == path.stem


PAPER_MODELS = {  # row names of the weights table in docs/paper.md
    "Deep clustering": "dc",
    "Mask inference": "mi",
    "Transcription only": "tr",
    "Chimera": "chimera",
    "DC + TR": "dc_tr",
    "MI + TR": "mi_tr",
    "Cerberus": "cerberus",
}


def test_docs_paper_states_the_weights_the_recipes_use():
    rows = {}
    for line in (RECIPES.parent / "docs" / "paper.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in PAPER_MODELS:
            rows[PAPER_MODELS[cells[0]]] = tuple(float(c) for c in cells[1:])
    assert rows == WEIGHTS


def test_no_file_points_to_documents_outside_the_repository():
    root = RECIPES.parent
    outside = re.compile(r"(DESIGN|PAPER)\.md|\.\./shared")
    files = [root / "README.md", *root.glob("*.toml"), root / "Makefile"]
    for folder in ("docs", "recipes", "mstt", "tests", "plugins", "benchmarks"):
        files += [p for p in (root / folder).rglob("*") if p.suffix in (".md", ".py", ".yaml", ".toml")]
    hits = [f"{p.relative_to(root)}:{n}" for p in files if p.is_file()
            for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if outside.search(line)]
    assert hits == []


def test_every_paper_recipe_is_present():
    names = {p.stem for p in PAPER_RECIPES}
    expected = {f"{m}_set1" for m in WEIGHTS} | {f"{m}_set{n}" for m in ("chimera", "tr", "cerberus") for n in "234"}
    assert expected <= names


def test_files_merge_left_to_right_then_overrides(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("name: a\ntrainer: {batch_size: 4, max_steps: 10}\nmodel: {heads: {tr: {weight: 1.0}}}\n")
    b = tmp_path / "b.yaml"
    b.write_text("trainer: {batch_size: 2}\n")
    config = load_recipe([a, b], ["trainer.max_steps=7", "data.sources=[bass,drums]"])
    assert config.trainer.batch_size == 2
    assert config.trainer.max_steps == 7
    assert list(config.data.sources) == ["bass", "drums"]


def test_base_files_resolve_relative_and_refuse_cycles(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text("trainer: {batch_size: 3}\n")
    top = tmp_path / "top.yaml"
    top.write_text("base: sub/base.yaml\nmodel: {heads: {tr: {weight: 1.0}}}\n")
    assert load_recipe([top]).trainer.batch_size == 3
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(RecipeError, match="includes itself"):
        load_recipe([loop])


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.wieght_decay_typo=3", "trainer.wieght_decay_typo: unknown key"),
        ("model.heads.tr.wieght=3", "model.heads.tr.wieght: unknown key; did you mean weight?"),
        ("trainer.batch_size=big", "trainer.batch_size: value 'big'"),
        ("optim.lr", "write it as key=value"),
    ],
)
def test_bad_keys_and_types_name_the_path(override, message):
    with pytest.raises(RecipeError) as info:
        load_recipe([RECIPES / "cerberus_set4.yaml"], [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_typo_in_a_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  heads:\n    tr: {wieght: 0.8}\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: model.heads.tr.wieght: unknown key; did you mean weight\?"):
        load_recipe([bad])


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe([bad])
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe([tmp_path / "missing.yaml"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.heads.mi.options.activaton=relu", "model.heads.mi.options.activaton: unknown key; did you mean activation?"),
        ("model.heads.mi.options.activation=relu", "activation must be softmax or sigmoid"),
        ("model.encoder.options.hidden_size=wide", "model.encoder.options.hidden_size: value 'wide'"),
        ("model.heads.tr.loss_options.kind=focal", "kind must be bce or l2"),
        ("model.heads.tr.weight=-0.5", "model.heads.tr.weight: -0.5 is negative"),
        ("model.encoder.name=lstm", "unknown encoder 'lstm'; did you mean 'blstm'?"),
        ("model.heads.tr.loss=bce", "model.heads.tr.loss: unknown loss 'bce'"),
        ("data.sources=[]", "data.sources: name at least one source"),
        ("trainer.max_steps=0", "trainer.max_steps: 0; train at least 1 step"),
        ("trainer.max_minutes=-1", "trainer.max_minutes: -1.0 is negative"),
        ("data.gain_augment_db=-3", "data.gain_augment_db: -3.0 is negative"),
        ("data.eq_augment_db=-1", "data.eq_augment_db: -1.0 is negative"),
    ],
)
def test_component_options_are_validated_by_their_own_schema(override, message):
    config = load_recipe([RECIPES / "cerberus_set4.yaml"], [override])
    with pytest.raises(MsttError) as info:
        build_model(config)
    assert message in str(info.value)


def test_model_with_no_heads_is_refused():
    config = load_recipe([RECIPES / "chimera_set1.yaml"], ["model.heads.dc.weight=0", "model.heads.mi.weight=0"])
    with pytest.raises(RecipeError, match="no head has a weight above 0"):
        build_model(config)


def test_zero_weight_drops_the_head():
    model = build_model(load_recipe([RECIPES / "chimera_set1.yaml"]))
    assert set(model.heads) == {"dc", "mi"}


@pytest.mark.parametrize("path", PAPER_RECIPES, ids=lambda p: p.stem)
def test_dry_run_every_recipe(path, capsys):
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"name: {path.stem}" in out and "# parameters" in out and "total:" in out


def test_dry_run_typo_fails_with_one_line(capsys):
    code = main(["run", str(RECIPES / "cerberus_set4.yaml"), "trainer.wieght_decay_typo=3", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "wieght_decay_typo" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "recipe, override, message",
    [
        ("cerberus_set4", "optim.name=adamx", "optim.name: unknown optimiser 'adamx'; use one of adam, adamw, sgd"),
        ("cerberus_set4", "optim.schedule=linear", "optim.schedule: unknown schedule 'linear'"),
        ("cerberus_set4", "optim.schedule_options={fctor: 0.5}", "optim.schedule_options.fctor: unknown key; did you mean factor?"),
        ("cerberus_set4", "optim.schedule_options={factor: 2.0}", "optim.schedule_options.factor: 2.0 is out of range"),
        ("cerberus_set4", "eval.metrics=[si_sdrx]", "eval.metrics: unknown metric 'si_sdrx'"),
        ("cerberus_set4", "trainer.monitor=loss/xx", "trainer.monitor: 'loss/xx' is not a validation metric"),
        ("cerberus_set4", "trainer.validate_every=0", "trainer.validate_every: 0 must be at least 1"),
        ("cerberus_set4", "eval.note_hold_threshold=0.6", "eval.note_hold_threshold: 0.6 is above eval.note_threshold (0.4)"),
        ("cerberus_set4", "eval.min_note_frames=0", "eval.min_note_frames: 0; use at least 1"),
        # Separator recipes go through the same checks as recipes with heads.
        ("convtasnet_set4", "eval.metrics=[si_sdrx]", "eval.metrics: unknown metric 'si_sdrx'"),
        ("convtasnet_set4", "optim.name=adamx", "optim.name: unknown optimiser 'adamx'"),
        ("convtasnet_set4", "trainer.monitor=loss/tr", "use one of loss, loss/separator"),
        ("convtasnet_set4", "trainer.precision=fp16", "trainer.precision: 'fp16' is not a precision"),
    ],
)
def test_dry_run_refuses_what_training_would_refuse_for_every_recipe_kind(recipe, override, message, capsys):
    code = main(["run", str(RECIPES / f"{recipe}.yaml"), override, "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=nan", "optim.lr: nan must be a positive finite number"),
        ("optim.lr=0", "optim.lr: 0.0 must be a positive finite number"),
        ("optim.lr=-1", "optim.lr: -1.0 must be a positive finite number"),
        ("optim.lr=inf", "optim.lr: inf must be a positive finite number"),
        ("optim.momentum=1.5", "optim.momentum: 1.5 must be a number in [0, 1)"),
        ("optim.grad_clip=-1", "optim.grad_clip: -1.0 must be a finite number >= 0"),
        ("eval.note_threshold=0", "eval.note_threshold: 0.0 must be a probability in (0, 1)"),
        ("eval.note_hold_threshold=nan", "eval.note_hold_threshold: nan must be a probability in (0, 1)"),
        ("data.eval_segment_seconds=0", "data.eval_segment_seconds: 0.0 must be a positive"),
        ("data.crop_seconds=nan", "data.crop_seconds: nan must be a finite number"),
        ("trainer.max_minutes=nan", "trainer.max_minutes: nan must be a finite number"),
        ("model.heads.tr.weight=-inf", "model.heads.tr.weight: -inf must be a finite number"),
        ("data.options.silence_threshold=.nan", "data.options.silence_threshold: nan must be a finite number"),
        ("optim.schedule_options={factor: .nan}", "optim.schedule_options.factor: nan must be a finite number"),
        ("data.options.splits=[0.8,.inf,0.1]", "data.options.splits[1]: inf must be a finite number"),
    ],
)
def test_nan_inf_and_bad_learning_rates_are_refused_at_load(override, message, capsys):
    with pytest.raises(RecipeError) as info:
        load_recipe([RECIPES / "cerberus_set4.yaml"], [override])
    assert message in str(info.value) and "\n" not in str(info.value)
    # --dry-run loads the recipe, so it refuses them too: one line, exit 2.
    assert main(["run", str(RECIPES / "cerberus_set4.yaml"), RECIPES.parent.joinpath("recipes/quick.yaml").as_posix(),
                 override, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_nan_string_in_component_options_is_refused_by_their_schema():
    # YAML reads "nan" as a string; only the adapter's float schema makes it a number.
    config = load_recipe([RECIPES / "cerberus_set4.yaml"], ["data.options.silence_threshold=nan"])
    with pytest.raises(RecipeError, match=r"^data.options.silence_threshold: nan must be a finite number$"):
        build_model(config)


def test_every_float_field_of_the_schemas_is_checked_for_nan():
    import dataclasses

    from mstt import recipe

    floats = [
        f"{section}.{f.name}"
        for section, schema in [("data", recipe.DataConfig), ("optim", recipe.OptimConfig),
                                ("trainer", recipe.TrainerConfig), ("eval", recipe.EvalConfig)]
        for f in dataclasses.fields(schema) if "float" in str(f.type)
    ]
    assert len(floats) >= 10
    for key in floats:
        with pytest.raises(RecipeError, match=rf"^{key.replace('.', '[.]')}: nan must be"):
            load_recipe([RECIPES / "cerberus_set4.yaml"], [f"{key}=nan"])
