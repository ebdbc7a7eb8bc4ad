"""Time to quality: the demo recipe trained for fixed wall-clock budgets (or steps), two paths side by side.

    .venv/bin/python benchmarks/time_to_quality.py --out DIR [--budgets 2 4 7] [key=value ...]
    .venv/bin/python benchmarks/time_to_quality.py --out DIR --steps 1200 --seeds 0 1 2

Paths (one row each, in the same process, one after the other, so one machine and one load):

- ``reference``: what the trainer did before the CPU speed-ups, eager fp32 with the deep clustering
  head on every frame (``trainer.precision=fp32 model.heads.dc.train_frames=1``);
- ``fast``: the recipe as it ships (bf16 autocast where the CPU has it, with the recurrent trunk
  kept in float32, and the DC head on a subset of frames);
- ``bf16-trunk`` (``--paths``): the fast path as it shipped until 2026-12-07, bf16 in the trunk too
  (``model.encoder.options.fp32=false``);
- ``bf16-dc-all`` and ``fp32-dc-subset`` (``--paths``): one lever each of the bf16-trunk path, to
  tell which costs what it loses per step;
- ``fast-lstm-fp32`` (``--paths``): the trunk in float32 under autocast, named so (the runs that
  chose it, before it shipped).

Budget mode trains each path for ``B`` minutes of training wall time (``trainer.max_minutes=B``,
``trainer.max_steps`` lifted so that the clock is the only bound; the cosine schedule ends at the
clock), budgets interleaved path by path. Steps mode trains each path for exactly ``--steps`` steps
per seed (``trainer.max_minutes=null``), which shows whether the fast path learns as much per
step. Each run is :func:`mstt.bench.run_bench`'s: a run folder per path under ``DIR/<budget>/``,
evaluated on the recipe's test split, resumable. ``DIR/ttq.json`` and ``DIR/ttq.md`` hold every
row (steps, throughput, SI-SDRi and onset F1 per source) and the fast/reference ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from mstt.bench import BenchItem, check_comparable, device_name, run_bench
from mstt.devices import resolve_device
from mstt.errors import MsttError
from mstt.fileio import write_text_atomic
from mstt.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = [str(ROOT / "recipes" / "cerberus_set4.yaml"), str(ROOT / "recipes" / "quick.yaml")]
PATHS = {
    "reference": ["trainer.precision=fp32", "model.heads.dc.train_frames=1.0"],
    "fast": [],
    # The fast path until 2026-12-07: bf16 in the trunk too.
    "bf16-trunk": ["model.encoder.options.fp32=false"],
    "bf16-dc-all": ["model.heads.dc.train_frames=1.0", "model.encoder.options.fp32=false"],
    "fp32-dc-subset": ["trainer.precision=fp32"],
    "fast-lstm-fp32": ["model.encoder.options.fp32=true"],
}
DEFAULT_PATHS = ["reference", "fast"]
UNBOUNDED_STEPS = 10**7  # budget mode: the clock alone stops training


def group_overrides(budget: float | None, steps: int | None, seed: int) -> list[str]:
    """Overrides that set one group's bound (minutes or steps) and seed."""
    if budget is not None:
        return [f"trainer.max_minutes={budget}", f"trainer.max_steps={UNBOUNDED_STEPS}", f"trainer.seed={seed}"]
    return ["trainer.max_minutes=null", f"trainer.max_steps={steps}", f"trainer.seed={seed}"]


def group_items(extra: list[str], bound: list[str], paths: list[str] = DEFAULT_PATHS) -> list[BenchItem]:
    """One bench item per path, named ``<recipe>-<path>``, checked comparable."""
    items = []
    for label in paths:
        config = load_recipe(RECIPES, [*extra, *bound, *PATHS[label]])
        config.name = f"{config.name}-{label}"
        items.append(BenchItem(label, config))
    check_comparable(items)
    return items


def summarise(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per group: each path's rows (several seeds in steps mode), means, and fast/reference ratios."""
    def mean(values: list[float | None]) -> float | None:
        values = [v for v in values if v is not None]
        return statistics.fmean(values) if values else None

    def spread(values: list[float | None]) -> float | None:
        values = [v for v in values if v is not None]
        return statistics.stdev(values) if len(values) > 1 else None

    out: dict[str, Any] = {}
    for label, group in rows.items():
        sources = list((group[0]["si_sdri"] or {}).keys())
        out[label] = {
            "steps": mean([r["steps"] for r in group]),
            "train_throughput": mean([r["train_throughput"] for r in group]),
            "si_sdri": {s: mean([r["si_sdri"][s] for r in group]) for s in sources},
            "onset_f1": {s: mean([(r["onset_f1"] or {}).get(s) for r in group]) for s in sources},
            "si_sdri_mean_std": spread([r["si_sdri"]["mean"] for r in group]),
            "onset_f1_mean_std": spread([(r["onset_f1"] or {}).get("mean") for r in group]),
            "runs": len(group),
        }
    if "reference" in out and "fast" in out and out["reference"]["train_throughput"]:
        out["throughput_ratio"] = out["fast"]["train_throughput"] / out["reference"]["train_throughput"]
    return out


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    """ttq.md: one table, a row per group and path."""
    sources = result["sources"]
    lines = [
        "# Time to quality",
        "",
        f"Recipe: {' + '.join(Path(r).name for r in RECIPES)} {' '.join(result['overrides'])}. "
        f"Device: {result['device']}. Mode: {result['mode']}.",
        "",
        "| bound | path | steps | audio s/s | x ref | "
        + " | ".join(f"SI-SDRi {s}" for s in sources)
        + " | SI-SDRi mean | "
        + " | ".join(f"onset F1 {s}" for s in sources)
        + " | onset F1 mean |",
        "| --- | --- |" + " ---: |" * (3 + 2 * len(sources) + 2),
    ]
    for bound, group in result["groups"].items():
        for label in PATHS:
            if label not in group:
                continue
            g = group[label]
            ratio = g["train_throughput"] / group["reference"]["train_throughput"] if "reference" in group else None
            sdr = [_num(g["si_sdri"].get(s)) for s in sources]
            f1 = [_num(g["onset_f1"].get(s), 3) for s in sources]
            sdr_std, f1_std = g["si_sdri_mean_std"], g["onset_f1_mean_std"]
            sdr_mean = _num(g["si_sdri"].get("mean")) + (f" ± {sdr_std:.2f}" if sdr_std is not None else "")
            f1_mean = _num(g["onset_f1"].get("mean"), 3) + (f" ± {f1_std:.3f}" if f1_std is not None else "")
            lines.append(
                f"| {bound} | {label} | {g['steps']:.0f} | {_num(g['train_throughput'])} | {_num(ratio)} | "
                + " | ".join(sdr) + f" | {sdr_mean} | " + " | ".join(f1) + f" | {f1_mean} |"
            )
    lines += [
        "",
        "Throughput: audio seconds trained per second of training wall time, validation included. "
        "SI-SDRi in dB on the synthetic test split; onset F1 from the shared evaluation. "
        "Steps mode: means over seeds, ± the sample standard deviation.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the groups, rewrite ttq.json/ttq.md after each; 0, or the first failing run's status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budgets", type=float, nargs="+", default=[2.0, 4.0, 7.0], help="minutes of training")
    parser.add_argument("--steps", type=int, default=None, help="equal steps instead of budgets")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=DEFAULT_PATHS,
                        help=f"which paths to train, in this order (default: {' '.join(DEFAULT_PATHS)})")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every run")
    args = parser.parse_args(argv)
    for flag, values in (("--seeds", args.seeds), ("--paths", args.paths), ("--budgets", args.budgets)):
        twice = next((v for v in values if values.count(v) > 1), None)
        if twice is not None:  # the same run twice would count twice in every mean
            raise MsttError(f"{flag}: {twice} is given twice; give each once")
    if args.steps is not None and args.steps < 1:
        raise MsttError(f"--steps: {args.steps}; train at least 1 step")
    if args.steps is None and any(b <= 0 for b in args.budgets):
        raise MsttError(f"--budgets: {args.budgets}; give positive minutes")
    bounds = [(f"{args.steps} steps", None, args.steps)] if args.steps else [(f"{b:g} min", b, None) for b in args.budgets]
    groups = [(name, budget, steps, seed) for name, budget, steps in bounds for seed in args.seeds]
    # Every recipe error surfaces before the first run trains.
    plans = [(name, seed, group_items(args.overrides, group_overrides(budget, steps, seed), args.paths))
             for name, budget, steps, seed in groups]
    device = resolve_device(str(plans[0][2][0].config.trainer.device))
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    result: dict[str, Any] = {}
    for name, seed, items in plans:
        folder = args.out / name.replace(" ", "") / f"seed{seed}"
        status = run_bench(items, folder, progress=False)
        if status != 0:
            return status
        bench_rows = json.loads((folder / "bench.json").read_text())["rows"]
        for item, row in zip(items, bench_rows):
            rows.setdefault(name, {}).setdefault(item.path, []).append(row)
        result = {
            "mode": f"{args.steps} steps, seeds {args.seeds}" if args.steps else f"budgets {args.budgets} minutes, seeds {args.seeds}",
            "device": device_name(device),
            "overrides": args.overrides,
            "paths": {label: PATHS[label] for label in args.paths},
            "sources": list(items[0].config.data.sources),
            "groups": {bound: summarise(by_path) for bound, by_path in rows.items()},
            "rows": rows,
        }
        write_text_atomic(args.out / "ttq.json", json.dumps(result, indent=2) + "\n")
        write_text_atomic(args.out / "ttq.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MsttError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
