"""``mstt run RECIPE.yaml [MORE.yaml ...] [key=value ...] [--out DIR] [--dry-run]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from mstt.errors import RecipeError
from mstt.nn.build import build_model
from mstt.recipe import load_recipe, to_yaml


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


def run(args: argparse.Namespace) -> int:
    """Validate and build; then train, evaluate and report unless --dry-run."""
    files, overrides = split_items(args.items)
    config = load_recipe(files, overrides)
    model = build_model(config)
    if args.dry_run:
        print(to_yaml(config), end="")
        counts = model.parameter_counts()
        print("# parameters")
        for name, count in counts.items():
            print(f"#   {name}: {count:,}")
        print(f"#   total: {sum(counts.values()):,}")
        if config.model.init:
            from mstt.train.init import initialise

            for line in initialise(model, config):  # refuses a name or file that is not there, or does not fit
                print(f"# {line}")
        return 0
    from mstt.experiment import run_experiment

    out = args.out or Path("runs") / config.name
    return run_experiment(config, out)
