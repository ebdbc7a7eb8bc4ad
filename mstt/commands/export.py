"""``mstt export CHECKPOINT OUT [--half]``: a small inference-only checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``export`` sub-command."""
    p = subparsers.add_parser("export", help="write an inference-only copy of a checkpoint (recipe + weights)")
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="an mstt checkpoint, e.g. runs/x/checkpoints/best.pt")
    p.add_argument("out", type=Path, metavar="OUT", help="the file to write, e.g. model.pt")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; print the sizes before and after."""
    from mstt.export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, half=args.half)
    before, after = args.checkpoint.stat().st_size, out.stat().st_size
    print(f"wrote {out} ({after / 1e6:.1f} MB, from {before / 1e6:.1f} MB); load it with mstt.load or mstt separate")
    return 0
