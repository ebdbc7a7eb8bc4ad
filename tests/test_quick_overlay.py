"""recipes/quick.yaml scales every recipe kind; ``model.separator_options`` reaches only its separator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from mstt.bench import is_overlay
from mstt.cli import main
from mstt.errors import RecipeError
from mstt.plugins import get_registry
from mstt.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
QUICK = RECIPES / "quick.yaml"
# The recipes quick.yaml is for: those on the synthetic default (its data.options are synth's).
SYNTH_RECIPES = sorted(
    p for p in RECIPES.glob("*.yaml") if not is_overlay(p) and load_recipe([p]).data.kind == "synth"
)
SEPARATORS = ("convtasnet", "dprnn", "sudormrf")
# One recipe of each kind: heads (every weighting of the paper, the onset plugin) and separators.
KINDS = ["cerberus_set4", "chimera_set4", "dc_set1", "dc_tr_set1", "mi_set1", "mi_tr_set1", "tr_set4",
         "cerberus_onsets_set4", "convtasnet_set4", "dprnn_set4", "sudormrf_set4"]


def _plain(config) -> dict:
    return OmegaConf.to_container(config, resolve=True)


def _has(kind: str, name: str) -> bool:
    return name in get_registry().names(kind)


@pytest.fixture
def quick_without_separators(tmp_path: Path) -> Path:
    """recipes/quick.yaml less its model.separator_options: what the overlay was before it sized separators."""
    raw = yaml.safe_load(QUICK.read_text())
    del raw["model"]["separator_options"]
    path = tmp_path / "quick_heads_only.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("path", SYNTH_RECIPES, ids=lambda p: p.stem)
def test_quick_changes_only_the_separator_options_of_a_recipe(path, quick_without_separators):
    with_separators = _plain(load_recipe([path, QUICK]))
    without = _plain(load_recipe([path, quick_without_separators]))
    separator = without["model"]["separator"]
    if separator is None:  # a heads recipe: exactly what it was
        assert with_separators == without
        return
    options = yaml.safe_load(QUICK.read_text())["model"]["separator_options"][separator["name"]]
    assert with_separators["model"]["separator"]["options"] == options
    with_separators["model"]["separator"]["options"] = separator["options"]
    assert with_separators == without  # nothing else changed


def test_every_separator_recipe_is_sized_by_quick():
    sized = {load_recipe([p]).model.separator.name for p in SYNTH_RECIPES if load_recipe([p]).model.separator}
    assert sized == set(SEPARATORS) == set(yaml.safe_load(QUICK.read_text())["model"]["separator_options"])


@pytest.mark.parametrize("recipe", KINDS)
def test_dry_run_of_every_recipe_kind_with_quick(recipe, capsys):
    config = load_recipe([RECIPES / f"{recipe}.yaml"])
    if config.model.separator is not None and not _has("separators", config.model.separator.name):
        pytest.skip("the mstt-asteroid plugin is not installed")
    if "onset" in config.model.heads and not _has("heads", "onset"):
        pytest.skip("the mstt-onset-head plugin is not installed")
    assert main(["run", str(RECIPES / f"{recipe}.yaml"), str(QUICK), "--dry-run"]) == 0
    out = capsys.readouterr().out
    total = int(re.search(r"#   total: ([\d,]+)", out).group(1).replace(",", ""))
    assert "separator_options" not in out  # applied, not kept in the resolved recipe
    if config.model.separator is not None:
        # Paper size is 2.8-5.2 M; quick.yaml's separators are each under a million
        # (plugins/mstt-asteroid/tests pins the exact counts).
        assert 100_000 < total < 1_000_000
    else:
        assert "hidden_size: 128" in out and total < 5_000_000  # the quick trunk (2 x 128)


# ---------------------------------------------------------------- the mechanism, on small files


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


OVERLAY = """
model:
  separator_options:
    convtasnet: {n_repeats: 1, n_blocks: 2}
    dprnn: {n_repeats: 1}
"""


def test_options_reach_only_the_named_separator(tmp_path):
    overlay = _write(tmp_path, "overlay.yaml", OVERLAY)
    conv = load_recipe([RECIPES / "convtasnet_set4.yaml", overlay]).model.separator
    assert conv.options.n_repeats == 1 and conv.options.n_blocks == 2 and conv.options.n_filters == 512
    sudo = load_recipe([RECIPES / "sudormrf_set4.yaml", overlay]).model.separator
    assert _plain(sudo.options) == _plain(load_recipe([RECIPES / "sudormrf_set4.yaml"]).model.separator.options)
    assert load_recipe([RECIPES / "cerberus_set4.yaml", overlay]).model.separator is None


def test_later_layers_still_win(tmp_path):
    overlay = _write(tmp_path, "overlay.yaml", OVERLAY)
    conv = RECIPES / "convtasnet_set4.yaml"
    # An override after the overlay wins over it ...
    assert load_recipe([conv, overlay], ["model.separator.options.n_repeats=3"]).model.separator.options.n_repeats == 3
    # ... and so does a recipe merged after it (the overlay's options sit in the overlay's place).
    assert load_recipe([overlay, conv]).model.separator.options.n_repeats == 3
    # The per-name form works as an override too.
    assert load_recipe([conv], ["model.separator_options.convtasnet.n_repeats=2"]).model.separator.options.n_repeats == 2


def test_a_layers_own_separator_options_win_within_it(tmp_path):
    both = _write(tmp_path, "both.yaml", OVERLAY + "  separator: {options: {n_repeats: 2}}\n")
    assert load_recipe([RECIPES / "convtasnet_set4.yaml", both]).model.separator.options.n_repeats == 2


def test_bad_separator_options_are_one_line_errors(tmp_path):
    not_a_mapping = _write(tmp_path, "bad.yaml", "model:\n  separator_options: [convtasnet]\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: model.separator_options: give a mapping of separator name -> options"):
        load_recipe([RECIPES / "cerberus_set4.yaml", not_a_mapping])
    if not _has("separators", "convtasnet"):
        pytest.skip("the mstt-asteroid plugin is not installed")
    typo = _write(tmp_path, "typo.yaml", "model:\n  separator_options: {convtasnett: {n_repeats: 1}}\n")
    with pytest.raises(RecipeError, match=r"typo.yaml: model.separator_options.convtasnett: no such separator; did you mean convtasnet\?"):
        load_recipe([RECIPES / "cerberus_set4.yaml", typo])
    # A name no installed plugin registers, and close to none, is allowed (its plugin may be absent).
    other = _write(tmp_path, "other.yaml", "model:\n  separator_options: {demucs: {depth: 4}}\n")
    assert load_recipe([RECIPES / "convtasnet_set4.yaml", other]).model.separator.options.n_repeats == 3
