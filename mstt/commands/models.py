"""``mstt models [--json]``: the models addressed by name (bundled with mstt or registered by plugins)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``models`` sub-command."""
    p = subparsers.add_parser("models", help="list the trained models mstt addresses by name (mstt separate --model NAME)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def listing() -> list[dict[str, Any]]:
    """One row per registered model: name, MB (None when the file is missing), sources, recipe, plugin, description, path."""
    from mstt.plugins import get_registry

    rows = []
    for c in get_registry().components("models"):
        size = c.factory.stat().st_size / 1e6 if c.factory.is_file() else None
        rows.append({"name": c.name, "mb": None if size is None else round(size, 1), "sources": list(c.info.get("sources") or []),
                     "recipe": c.info.get("recipe"), "plugin": c.plugin, "description": c.description, "path": str(c.factory)})
    return rows


def run(args: argparse.Namespace) -> int:
    """Print the listing; say how to add a model when there is none."""
    from mstt.bundled import DEFAULT

    rows = listing()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no models are installed; bundle one with: mstt export --half CHECKPOINT mstt/models/default.pt --bundle default")
        return 0
    table = [(r["name"], "missing" if r["mb"] is None else f"{r['mb']:.1f} MB", ",".join(r["sources"]) or "-",
              r["plugin"], r["description"]) for r in rows]
    header = ("name", "size", "sources", "from", "description")
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header) - 1)]
    for row in [header, *table]:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + "  " + row[-1])
    for r in rows:
        print(f"{r['name']}: {r['path']}")
    if DEFAULT not in {r["name"] for r in rows}:
        print(f"no model is named '{DEFAULT}': mstt separate and mstt.load() need a model named explicitly")
    return 0
