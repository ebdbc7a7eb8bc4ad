"""``mstt run RECIPE.yaml [MORE.yaml ...] [key=value ...] [--out DIR] [--dry-run]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mstt.errors import RecipeError
from mstt.nn.build import build_model
from mstt.recipe import load_recipe, to_yaml

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from torch import nn


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``run`` sub-command."""
    p = subparsers.add_parser("run", help="train, evaluate and report one recipe")
    p.add_argument("items", nargs="+", metavar="RECIPE.yaml|key=value", help="recipes merged left to right, then overrides")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/<recipe name>)")
    p.add_argument("--dry-run", action="store_true", help="validate, build the model, print the recipe and parameter counts")
    p.set_defaults(func=run)


def split_items(items: list[str]) -> tuple[list[str], list[str]]:
    """Separate recipe files from ``key=value`` overrides (overrides come after the files)."""
    files, overrides = [], []
    for item in items:
        if "=" in item and not item.endswith((".yaml", ".yml")):
            overrides.append(item)
        elif overrides:
            raise RecipeError(f"{item}: recipe files come before key=value overrides")
        else:
            files.append(item)
    return files, overrides


def init_lines(model: nn.Module, config: DictConfig, out: Path) -> list[str]:
    """Check ``model.init`` (exists, fits this recipe's model) before any data is rendered; the lines it logs.

    A folder holding a run resumes from its last.pt instead, so model.init is not read then.
    """
    if not config.model.init:
        return []
    if (out / "checkpoints" / "last.pt").is_file():
        return [f"model.init: not read; {out} holds a run, which resumes from its last.pt"]
    from mstt.train.init import initialise

    return initialise(model, config)


def run(args: argparse.Namespace) -> int:
    """Validate and build; then train, evaluate and report unless --dry-run."""
    files, overrides = split_items(args.items)
    config = load_recipe(files, overrides)
    model = build_model(config)
    out = args.out or Path("runs") / config.name
    lines = init_lines(model, config, out)
    if args.dry_run:
        print(to_yaml(config), end="")
        counts = model.parameter_counts()
        print("# parameters")
        for name, count in counts.items():
            print(f"#   {name}: {count:,}")
        print(f"#   total: {sum(counts.values()):,}")
        for line in lines:
            print(f"# {line}")
        return 0
    from mstt.experiment import run_experiment

    return run_experiment(config, out)
