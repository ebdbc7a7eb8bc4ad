"""``mstt bench RECIPE.yaml... [OVERLAY.yaml ...] [key=value ...] [--overlay F] [--out DIR] [--force]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from mstt.commands.run import split_items


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``bench`` sub-command."""
    p = subparsers.add_parser(
        "bench",
        help="train several recipes on the same data and budget; one comparison table",
        description=(
            "Train and evaluate every recipe in OUT/<recipe name>/ and write OUT/bench.md and "
            "OUT/bench.json. A YAML file with neither name: nor base: at its top (e.g. "
            "recipes/quick.yaml) is an overlay: it applies to every recipe, as do key=value "
            "overrides. Recipes must agree on data, evaluation split and budget. Running the "
            "same command again resumes; finished runs are only re-read. From each recipe's "
            "first steps the bench projects its steps in the budget and its peak memory, and "
            "refuses a recipe (no row; exit status 2 at the end) that would get under 10%% of the "
            "steps of the fastest recipe so far or pass 75%% of the machine's memory."
        ),
    )
    p.add_argument("items", nargs="+", metavar="RECIPE.yaml|OVERLAY.yaml|key=value")
    p.add_argument(
        "--overlay", action="append", default=[], metavar="FILE",
        help="apply FILE to every recipe even if it has a name: or base: (repeatable)",
    )
    p.add_argument("--out", type=Path, default=Path("runs") / "bench", help="bench folder (default runs/bench)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--force", action="store_true",
        help="train a recipe the guard would refuse (too few steps or too much memory projected); warn instead",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Classify files into recipes and overlays, check them, then bench."""
    from mstt.bench import is_overlay, load_items, run_bench

    files, overrides = split_items(args.items)
    recipes = [f for f in files if not is_overlay(f)]
    overlays = [f for f in files if is_overlay(f)] + list(args.overlay)
    items = load_items(recipes, overlays, overrides)
    for item in items:
        print(f"bench: {item.name} <- {item.path}" + (f" + {', '.join(overlays)}" if overlays else ""))
    return run_bench(items, args.out, progress=not args.no_progress, force=args.force)
