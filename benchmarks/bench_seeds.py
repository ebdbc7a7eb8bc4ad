"""The same ``mstt bench`` run with several seeds, as one table: mean ± sample std per recipe.

    .venv/bin/python benchmarks/bench_seeds.py runs/fair_seed0 runs/fair_seed1 --out runs/fair

Each argument is a ``bench.json`` that ``mstt bench --out D`` wrote (or its folder ``D``), one per
seed, all with the same recipes. ``OUT/bench_seeds.json`` holds every recipe's statistics
(``{mean, std, n}`` per metric and source) and ``OUT/bench_seeds.md`` two tables: throughput and
memory with the mean scores, then SI-SDRi and onset F1 per source.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # mstt from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # ablation_numbers beside this file

from ablation_numbers import cell, spread  # noqa: E402

from mstt.fileio import write_text_atomic  # noqa: E402

SCALARS = {  # row key -> (column, digits, scale)
    "steps": ("steps", 0, 1.0),
    "train_throughput": ("audio s/s", 1, 1.0),
    "peak_memory_mb": ("peak GB", 2, 1 / 1024),
    "rtf": ("RTF", 3, 1.0),
}
SCORES = {"si_sdri": ("SI-SDRi (dB)", 2), "onset_f1": ("onset F1", 3)}


def load_runs(paths: list[Path]) -> list[list[dict[str, Any]]]:
    """The rows of each seed's bench.json; SystemExit naming the file when one is missing or not a bench table."""
    runs = []
    for path in paths:
        file = path / "bench.json" if path.is_dir() else path
        try:
            rows = json.loads(file.read_text())["rows"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{file}: not a bench.json written by `mstt bench --out D` ({exc})") from None
        runs.append(rows)
    return runs


def statistics_of(runs: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per recipe (in the first run's order): each scalar's and each score's per-source spread over the runs."""
    recipes = [row["recipe"] for row in runs[0]]
    for index, rows in enumerate(runs[1:], start=2):
        if sorted(row["recipe"] for row in rows) != sorted(recipes):
            raise SystemExit(f"run {index} has recipes {[r['recipe'] for r in rows]}, the first has {recipes}")
    result: dict[str, dict[str, Any]] = {}
    for recipe in recipes:
        rows = [next(row for row in run if row["recipe"] == recipe) for run in runs]
        stats: dict[str, Any] = {key: spread([row.get(key) for row in rows]) for key in SCALARS}
        for key in SCORES:
            sources = [s for s in (rows[0].get(key) or {})]
            stats[key] = {s: spread([(row.get(key) or {}).get(s) for row in rows]) for s in sources} or None
        stats["params"] = rows[0].get("params")
        result[recipe] = stats
    return result


def _scaled(stat: dict[str, Any] | None, scale: float) -> dict[str, Any] | None:
    if stat is None or scale == 1.0:
        return stat
    return {**stat, "mean": stat["mean"] * scale, "std": None if stat["std"] is None else stat["std"] * scale}


def markdown(stats: dict[str, dict[str, Any]], seeds: int) -> str:
    """Two tables: cost and mean scores per recipe, then each score per source."""
    head = [col for col, _, _ in SCALARS.values()] + [f"mean {name}" for name, _ in SCORES.values()]
    lines = [f"Mean ± sample std over {seeds} seeds.", "", "| recipe | params | " + " | ".join(head) + " |",
             "| --- | ---: |" + " ---: |" * len(head)]
    for recipe, row in stats.items():
        cells = [cell(_scaled(row[key], scale), digits) for key, (_, digits, scale) in SCALARS.items()]
        cells += [cell((row[key] or {}).get("mean"), digits) for key, (_, digits) in SCORES.items()]
        params = f"{row['params'] / 1e6:.2f} M" if row["params"] else ""
        lines.append(f"| {recipe} | {params} | " + " | ".join(cells) + " |")
    for key, (name, digits) in SCORES.items():
        sources = list(dict.fromkeys(s for row in stats.values() for s in (row[key] or {}) if s != "mean"))
        lines += ["", f"| {name} | " + " | ".join(sources) + " |", "| --- |" + " ---: |" * len(sources)]
        for recipe, row in stats.items():
            if row[key]:
                lines.append(f"| {recipe} | " + " | ".join(cell(row[key].get(s), digits) for s in sources) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Read the seeds' bench.json files, write OUT/bench_seeds.json and .md, print the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="BENCH", help="bench.json files or their folders, one per seed")
    parser.add_argument("--out", type=Path, required=True, help="folder for bench_seeds.json and bench_seeds.md")
    args = parser.parse_args(argv)
    runs = load_runs(args.runs)
    stats = statistics_of(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"runs": [str(p) for p in args.runs], "recipes": stats}
    write_text_atomic(args.out / "bench_seeds.json", json.dumps(payload, indent=2) + "\n")
    text = markdown(stats, len(runs))
    write_text_atomic(args.out / "bench_seeds.md", text)
    print(text, end="")


if __name__ == "__main__":
    main()
