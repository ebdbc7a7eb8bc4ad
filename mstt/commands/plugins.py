"""``mstt plugins [--json]``: every registered component and every plugin that failed."""

from __future__ import annotations

import argparse
import json

from mstt.plugins import get_registry
from mstt.registry import KINDS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``plugins`` sub-command."""
    p = subparsers.add_parser("plugins", help="list registered components and plugin errors")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def listing() -> dict:
    """``{kind: [{"name", "plugin", "description"}], "errors": [{"plugin", "error"}]}``."""
    registry = get_registry()
    result: dict = {
        kind: [{"name": c.name, "plugin": c.plugin, "description": c.description} for c in registry.components(kind)]
        for kind in KINDS
    }
    result["errors"] = list(registry.errors)
    return result


def run(args: argparse.Namespace) -> int:
    """Print the listing."""
    data = listing()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for kind in KINDS:
        print(f"{kind}:")
        rows = data[kind] or [{"name": "(none)", "plugin": "", "description": ""}]
        width = max(len(r["name"]) for r in rows)
        pwidth = max(len(r["plugin"]) for r in rows)
        for r in rows:
            print(f"  {r['name']:<{width}}  {r['plugin']:<{pwidth}}  {r['description']}")
    if data["errors"]:
        print("plugins that failed to load:")
        for e in data["errors"]:
            print(f"  {e['plugin']}: {e['error']}")
    return 0
