"""``mstt synth``: write a synthetic multi-instrument set in the Slakh2100 layout."""

from __future__ import annotations

import argparse
import os

from mstt.data.synth import synthesize


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Attach the ``synth`` sub-command."""
    p = subparsers.add_parser(
        "synth",
        help="render a synthetic band-music set in the Slakh2100 layout",
        description="Compose band music (piano, guitar, bass, drums, strings), render every stem with "
                    "FluidSynth and write OUT/{train,validation,test}/TrackXXXXX/ as Slakh2100 does.",
    )
    p.add_argument("--sources", default="piano,guitar,bass,drums,strings",
                   help="comma-separated sources, one stem each (default: all five)")
    p.add_argument("--tracks", type=int, required=True, help="number of tracks over all splits")
    p.add_argument("--out", required=True, help="output folder (new, empty, or holding this same set to resume)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of every track (default 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same set (default 0)")
    p.add_argument("--soundfont", action="append", default=None, metavar="SF2",
                   help="a .sf2 file (default: pretty_midi's TimGM6mb.sf2); repeat it to render each stem "
                        "with one of several, picked at random per stem")
    p.add_argument("--extra-instruments", type=int, default=0, metavar="N",
                   help="add 0..N extra stems to each track, each a random GM program: a second guitar, piano "
                        "or string part, or an instrument of no class (organ, brass, reeds, synths) (default 0)")
    p.add_argument("--sample-rate", type=int, default=16000, help="Hz (default 16000)")
    p.add_argument("--jobs", type=int, default=None, help=f"worker processes (default: cores, {os.cpu_count()})")
    p.add_argument("--splits", default="0.8,0.1,0.1", help="train,validation,test fractions (default 0.8,0.1,0.1)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the set and print a one-line summary."""
    summary = synthesize(args.out, args.sources, args.tracks, seconds=args.seconds, seed=args.seed,
                         sample_rate=args.sample_rate, soundfont=args.soundfont, jobs=args.jobs,
                         splits=args.splits, progress=not args.no_progress,
                         extra_instruments=args.extra_instruments)
    print(summary.line())
    return 0
