"""``mstt export CHECKPOINT OUT [--half] [--bundle NAME [--description TEXT]]``: a small inference-only checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``export`` sub-command."""
    p = subparsers.add_parser(
        "export", help="write an inference-only copy of a checkpoint (recipe + weights)",
        description="Write an inference-only copy of a checkpoint. With --bundle NAME it is also listed, with its "
                    "sha256, in models.json beside OUT, so that mstt addresses it by name: "
                    "mstt export --half runs/x/checkpoints/best.pt mstt/models/default.pt --bundle default "
                    "makes it the model `mstt separate AUDIO` and mstt.load() use.",
    )
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="an mstt checkpoint, e.g. runs/x/checkpoints/best.pt")
    p.add_argument("out", type=Path, metavar="OUT", help="the file to write, e.g. model.pt")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    p.add_argument("--all-heads", action="store_true",
                   help="keep every head (by default heads inference never reads, e.g. deep clustering beside a mask head, are left out)")
    p.add_argument("--bundle", metavar="NAME", default=None,
                   help="also list OUT as model NAME in OUT's folder's models.json (mstt/models/ ships with mstt)")
    p.add_argument("--description", default=None, metavar="TEXT",
                   help="with --bundle: one line for mstt models (default: recipe, sources and step)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; print the sizes before and after, and the manifest entry with --bundle."""
    from mstt.bundled import add_to_manifest, check_name
    from mstt.errors import MsttError
    from mstt.export import export_checkpoint
    from mstt.train.checkpoint import load_checkpoint

    if args.description is not None and args.bundle is None:
        raise MsttError("--description goes with --bundle NAME (it describes the bundled model)")
    if args.bundle is not None:
        check_name(args.bundle)
    if args.bundle is not None and args.out.suffix != ".pt":
        raise MsttError(f"OUT {args.out}: a bundled model's file ends in .pt, e.g. {args.out.parent / (args.bundle + '.pt')}")
    out = export_checkpoint(args.checkpoint, args.out, half=args.half, all_heads=args.all_heads)
    before, after = args.checkpoint.stat().st_size, out.stat().st_size
    exported = load_checkpoint(out)
    dropped = exported.get("dropped_heads") or []
    left_out = f"; left out head {', '.join(dropped)} (inference does not use it; --all-heads keeps it)" if dropped else ""
    print(f"wrote {out} ({after / 1e6:.1f} MB, from {before / 1e6:.1f} MB){left_out}; load it with mstt.load or mstt separate")
    if args.bundle is not None:
        from mstt.models import FOLDER

        manifest, notes = add_to_manifest(out, args.bundle, exported, args.description)
        shipped = manifest.parent.resolve() == FOLDER
        print(f"listed it as model '{args.bundle}' in {manifest} (sha256 recorded); "
              + ("`mstt models` shows it; commit both files" if shipped else
                 "a plugin registers that folder with register_manifest(register, FOLDER) in mstt_register_models"))
        for note in notes:
            print(f"note: {note}")
    return 0
