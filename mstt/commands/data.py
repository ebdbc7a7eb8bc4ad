"""``mstt data KIND:PATH``: what a dataset holds, per split and source, what was skipped and what was left out."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from mstt.data.classes import DEFAULT_CLASSES
from mstt.errors import DataError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``data`` sub-command."""
    parser = subparsers.add_parser(
        "data", help="describe a dataset: tracks per split and source, skipped tracks and why"
    )
    parser.add_argument("spec", metavar="KIND:PATH", help="dataset kind and root, e.g. slakh:/data/slakh2100")
    parser.add_argument(
        "--sources",
        default=",".join(DEFAULT_CLASSES),
        help="comma-separated source classes (default: %(default)s)",
    )
    parser.add_argument("--sample-rate", type=int, default=16000, help="sample rate in Hz (default: 16000)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def parse_spec(spec: str) -> tuple[str, str]:
    """``KIND:PATH`` -> (kind, path); DataError when either part is missing."""
    kind, sep, path = spec.partition(":")
    if not sep or not kind or not path:
        raise DataError(f"'{spec}': give the dataset as KIND:PATH, e.g. slakh:/data/slakh2100")
    return kind, path


def build_adapter(kind: str, path: str, sources: list[str], sample_rate: int, describe: bool = False) -> Any:
    """Build a registered adapter with default options; ``describe`` keeps tracks lacking sources."""
    from mstt.plugins import get_registry

    component = get_registry().get("datasets", kind, where="mstt data")
    options = component.options() if component.options is not None else None
    if describe and options is not None and any(f.name == "require_all_sources" for f in dataclasses.fields(options)):
        options = dataclasses.replace(options, require_all_sources=False)
    return component.factory(path, sources, sample_rate, options)


def format_table(summary: dict[str, Any], kind: str) -> str:
    """The summary as aligned text tables."""
    lines = [f"{kind}: {summary['root']}  (layout {summary.get('layout') or '-'}, {summary['sample_rate']} Hz)", ""]
    lines.append(f"{'split':<12}{'tracks':>8}{'examples':>10}{'hours':>9}")
    for split, row in summary["splits"].items():
        lines.append(f"{split:<12}{row['tracks']:>8}{row['examples']:>10}{row['seconds'] / 3600:>9.2f}")
    lines += ["", f"{'source':<12}{'tracks':>8}{'hours':>9}"]
    for source, row in summary["sources"].items():
        lines.append(f"{source:<12}{row['tracks']:>8}{row['seconds'] / 3600:>9.2f}")
    skipped = summary["skipped"]
    lines += ["", f"skipped: {len(skipped)}"]
    lines += [f"  {s['path']}: {s['reason']}" for s in skipped]
    return "\n".join(lines + left_out_lines(summary.get("left_out") or []))


def left_out_lines(left_out: list[dict[str, str]], examples: int = 3) -> list[str]:
    """Parts of usable tracks left out by design, grouped by reason with a few examples (--json lists all)."""
    if not left_out:
        return []
    groups: dict[str, list[dict[str, str]]] = {}
    for entry in left_out:
        groups.setdefault(entry["reason"], []).append(entry)
    lines = ["", f"left out (information, not errors): {len(left_out)} stem(s) of usable tracks"]
    for reason, entries in groups.items():
        shown = ", ".join(f"{Path(e['path']).name}/{e['part']}" for e in entries[:examples])
        more = f", and {len(entries) - examples} more (--json lists all)" if len(entries) > examples else ""
        lines.append(f"  {len(entries)} x {reason}: {shown}{more}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Build the adapter, print its summary."""
    kind, path = parse_spec(args.spec)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    adapter = build_adapter(kind, path, sources, args.sample_rate, describe=True)
    summary = adapter.summary()
    print(json.dumps(summary, indent=2) if args.json else format_table(summary, kind))
    return 0
