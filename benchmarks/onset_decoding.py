"""What a note-decoding head does to onset F1: checkpoints evaluated with its decoder and without.

    .venv/bin/python benchmarks/onset_decoding.py --out DIR CHECKPOINT [CHECKPOINT ...] \
        [--data KIND:PATH --data-option KEY=VALUE ...] [--split test|validation] [--max-examples N]

A head registered with ``decode`` (the onset plugin's) reads the notes itself. Each checkpoint is
evaluated four ways: with the head's decoder as registered (``head``); with the frame roll split
wherever the head detects an onset inside a run (``split``); with that and the Onsets-and-Frames
gate, where a run may start a note only within a frame of a detected onset (``gated``); and with
the frame roll alone (``frames``, :func:`mstt.decode.decode_notes` with the recipe's
thresholds). ``frames`` against the plain model tells what the extra head's training did to the
shared trunk; the other three what each decoding rule does. Choose a rule on ``--split
validation``. Each evaluation is ``mstt eval``'s, into ``DIR/<n>-<way>/``;
``DIR/onset_decoding.json`` holds the onset and onset+offset F1 per source of every way.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from mstt.errors import MsttError
from mstt.fileio import write_text_atomic

LEVELS = ("onset", "onset_offset")
WAYS = ("head", "split", "gated", "frames")


def f1_table(metrics: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """``{source: {level: F1}}`` from a metrics.json dict's transcription block."""
    block = metrics.get("transcription") or {}
    return {source: {level: (levels.get(level) or {}).get("f1") for level in LEVELS} for source, levels in block.items()}


def onset_rule_decoder(require_onset: bool):
    """A stand-in for :func:`mstt.decode.note_decoder`: the onset plugin's decoder with one onset rule."""
    from mstt_onset_head import decode_with_onsets

    from mstt.decode import note_decoder

    decode = functools.partial(decode_with_onsets, require_onset=require_onset)

    def decoder_of(model):
        found = note_decoder(model)
        return None if found is None else (found[0], decode)

    return decoder_of


def decoders(head) -> dict[str, Any]:
    """Each of :data:`WAYS` -> a stand-in for ``note_decoder``; ``head`` is the decoder lookup as registered."""
    return {"head": head, "split": onset_rule_decoder(False), "gated": onset_rule_decoder(True),
            "frames": lambda model: None}


def evaluate_ways(checkpoint: Path, out: Path, data: str | None, options: list[str], split: str,
                  max_examples: int | None) -> dict[str, Any]:
    """One checkpoint evaluated with each decoder of :data:`WAYS`."""
    from mstt.commands.eval import evaluate
    from mstt.evaluate import core

    row: dict[str, Any] = {"checkpoint": str(checkpoint)}
    original = core.note_decoder
    ways = decoders(original)
    for way in WAYS:
        core.note_decoder = ways[way]
        try:
            metrics, _ = evaluate(checkpoint, data=data, data_options=options, split=split, max_examples=max_examples,
                                  out=out.with_name(f"{out.name}-{way}"), progress=False)
        finally:
            core.note_decoder = original
        row[way] = f1_table(metrics)
    return row


def main(argv: list[str] | None = None) -> int:
    """Evaluate every checkpoint both ways; write DIR/onset_decoding.json and print the means."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", default=None, help="KIND:PATH (default: each checkpoint recipe's data)")
    parser.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--split", default="test", help="train, validation or test (default test; choose a rule on validation)")
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        missing = [str(c) for c in args.checkpoints if not c.is_file()]
        if missing:
            raise MsttError(f"no checkpoint {missing[0]}; give best.pt or last.pt of a run")
        args.out.mkdir(parents=True, exist_ok=True)
        rows = []
        for n, checkpoint in enumerate(args.checkpoints):
            row = evaluate_ways(checkpoint, args.out / str(n), args.data, args.data_option, args.split, args.max_examples)
            rows.append(row)
            means = ", ".join(f"{way} {row[way].get('mean', {}).get('onset')}" for way in WAYS)
            print(f"{checkpoint}: mean onset F1 {means}")
        write_text_atomic(args.out / "onset_decoding.json",
                          json.dumps({"data": args.data, "data_options": args.data_option, "split": args.split,
                                      "max_examples": args.max_examples, "rows": rows}, indent=2) + "\n")
    except MsttError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
