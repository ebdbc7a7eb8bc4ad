"""What a note-decoding head does to onset F1: checkpoints evaluated with and without its decoder.

    .venv/bin/python benchmarks/onset_decoding.py --out DIR CHECKPOINT [CHECKPOINT ...] \
        [--data KIND:PATH --data-option KEY=VALUE ...] [--split test] [--max-examples N]

A head registered with ``decode`` (the onset plugin's) reads the notes itself: a frame run with
no onset near its start is trimmed to its first onset or dropped, an onset inside a run splits
it. Evaluating the same checkpoint a second time with the frame roll alone
(:func:`mstt.decode.decode_notes` with the recipe's thresholds) separates what the extra head's
training did to the shared trunk from what its decoding rule does. Each evaluation is
``mstt eval``'s, into ``DIR/<n>-<with|without>-decoder/``; ``DIR/onset_decoding.json`` holds the
onset and onset+offset F1 per source of both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mstt.errors import MsttError
from mstt.fileio import write_text_atomic

LEVELS = ("onset", "onset_offset")


def f1_table(metrics: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """``{source: {level: F1}}`` from a metrics.json dict's transcription block."""
    block = metrics.get("transcription") or {}
    return {source: {level: (levels.get(level) or {}).get("f1") for level in LEVELS} for source, levels in block.items()}


def evaluate_both(checkpoint: Path, out: Path, data: str | None, options: list[str], split: str,
                  max_examples: int | None) -> dict[str, Any]:
    """One checkpoint with its head's decoder, then with the frame roll alone."""
    from mstt.commands.eval import evaluate
    from mstt.evaluate import core

    row: dict[str, Any] = {"checkpoint": str(checkpoint)}
    original = core.note_decoder
    for label, decoder in (("with", original), ("without", lambda model: None)):
        core.note_decoder = decoder
        try:
            metrics, _ = evaluate(checkpoint, data=data, data_options=options, split=split, max_examples=max_examples,
                                  out=out.with_name(f"{out.name}-{label}-decoder"), progress=False)
        finally:
            core.note_decoder = original
        row[f"{label}_decoder"] = f1_table(metrics)
    return row


def main(argv: list[str] | None = None) -> int:
    """Evaluate every checkpoint both ways; write DIR/onset_decoding.json and print the means."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", default=None, help="KIND:PATH (default: each checkpoint recipe's data)")
    parser.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--split", default="test", help="train, validation or test (default test)")
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
            row = evaluate_both(checkpoint, args.out / str(n), args.data, args.data_option, args.split, args.max_examples)
            rows.append(row)
            means = {label: row[f"{label}_decoder"].get("mean", {}).get("onset") for label in ("with", "without")}
            print(f"{checkpoint}: mean onset F1 with the head's decoder {means['with']}, frame roll alone {means['without']}")
        write_text_atomic(args.out / "onset_decoding.json",
                          json.dumps({"data": args.data, "data_options": args.data_option, "split": args.split,
                                      "max_examples": args.max_examples, "rows": rows}, indent=2) + "\n")
    except MsttError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
