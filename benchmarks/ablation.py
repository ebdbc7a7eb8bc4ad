"""The paper's ablation grid over seeds: the set-1 table, the per-instrument table of sets 2-4, the claim.

    .venv/bin/python benchmarks/ablation.py --out DIR [--seeds 0 1 2] [--overlay recipes/quick.yaml]
        [--grid set1|sets|all] [--models chimera tr cerberus] [key=value ...]

Every run (recipe x seed, ``trainer.seed=K``; the data stays the same) trains and evaluates through
:func:`mstt.experiment.run_experiment` in ``DIR/<recipe>/seed<K>/``. Runs of one set and one seed
must agree on data and budget (:func:`mstt.bench.check_comparable`); a folder holding another
recipe's run is refused before anything trains. A finished run is only re-read, so running the same
command again resumes. ``DIR/ablation.md`` and ``DIR/ablation.json`` are rewritten after every
finished run: an interrupted grid keeps what it finished. Cells are "mean ± sample std over seeds".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from omegaconf import OmegaConf

from mstt.bench import BenchItem, check_comparable, device_name, finished_run
from mstt.errors import MsttError
from mstt.fileio import write_text_atomic
from mstt.recipe import load_recipe
from mstt.runlock import folder_lock

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
RECORD = "ablation_run.json"  # a finished run's numbers, kept in its folder for resuming
MODELS = {  # recipe prefix -> the paper's row name, in the paper's order
    "dc": "Deep clustering",
    "mi": "Mask inference",
    "tr": "Transcription only",
    "chimera": "Chimera",
    "dc_tr": "DC + TR",
    "mi_tr": "MI + TR",
    "cerberus": "Cerberus",
}
GRIDS = {"set1": {1: list(MODELS)}, "sets": {s: ["chimera", "tr", "cerberus"] for s in (2, 3, 4)}}
GRIDS["all"] = {**GRIDS["set1"], **GRIDS["sets"]}
SEPARATION = {"SI-SDRi": "si_sdri", "SDR": "sdr", "SIR": "sir", "SAR": "sar"}
TRANSCRIPTION = {"frame F1": "frame", "onset F1": "onset", "on/off F1": "onset_offset"}
TOLERANCE_DB = 0.2  # Cerberus keeps Chimera's separation when its mean SI-SDRi is at most this much lower


@dataclass
class Run:
    """One cell of the grid: a recipe of one set, trained with one seed, in its own folder."""

    set: int
    model: str
    seed: int
    item: BenchItem
    folder: Path


# ------------------------------------------------------------------ the grid


def load_runs(out: Path, grid: str, seeds: list[int], models: list[str] | None, overlays: list[str],
              overrides: list[str], recipe_dir: Path = RECIPES) -> list[Run]:
    """Resolve every recipe x seed; check that each set's runs of one seed share data and budget."""
    runs: list[Run] = []
    for set_id, names in GRIDS[grid].items():
        names = [m for m in names if models is None or m in models]
        for seed in seeds:
            items = []
            for model in names:
                path = recipe_dir / f"{model}_set{set_id}.yaml"
                item = BenchItem(str(path), load_recipe([path, *overlays], [*overrides, f"trainer.seed={seed}"]))
                items.append(item)
                runs.append(Run(set_id, model, seed, item, out / item.name / f"seed{seed}"))
            if items:
                check_comparable(items)
    if not runs:
        raise MsttError(f"no run in grid '{grid}' for models {models}")
    return runs


def check_run_folders(runs: list[Run]) -> None:
    """Refuse, before anything trains, a run folder that holds another recipe's run."""
    from mstt.train.checkpoint import recipe_difference

    for run in runs:
        saved = run.folder / "recipe.yaml"
        if saved.is_file():
            here = OmegaConf.to_container(run.item.config, resolve=True)
            diff = recipe_difference(yaml.safe_load(saved.read_text()), here)
            if diff is not None:
                raise MsttError(
                    f"{run.folder} holds a run of a different recipe ({diff[0]}: {diff[1]!r} there, {diff[2]!r} here); "
                    "use another --out, or the same grid, overlays and overrides to resume"
                )


def data_size(run: Run) -> dict[str, Any]:
    """The run's data: kind, sources, and tracks and hours per split (read from its adapter)."""
    from mstt.experiment import build_adapter

    config = run.item.config
    adapter = build_adapter(config)
    splits = {}
    for split in ("train", "validation", "test"):
        tracks = adapter.tracks(split)
        splits[split] = {"tracks": len(tracks), "hours": round(sum(t.samples / t.sample_rate for t in tracks) / 3600, 3)}
    return {"kind": str(config.data.kind), "sources": list(config.data.sources), "splits": splits}


def make_record(run: Run) -> dict[str, Any]:
    """The numbers of a finished run folder: metrics.json, steps and training seconds from last.pt."""
    from mstt.devices import resolve_device
    from mstt.train import load_checkpoint

    metrics = json.loads((run.folder / "metrics.json").read_text())
    last = load_checkpoint(run.folder / "checkpoints" / "last.pt")
    return {
        "recipe": run.item.name, "model": run.model, "set": run.set, "seed": run.seed,
        "sources": list(run.item.config.data.sources),
        "separation": metrics.get("separation"), "transcription": metrics.get("transcription"),
        "steps": int(last["step"]), "train_seconds": float(last["elapsed"]),
        "device": device_name(resolve_device(str(run.item.config.trainer.device))),
        "data": data_size(run),
    }


def run_grid(runs: list[Run], out: Path, progress: bool = True) -> int:
    """Train (or re-read) every run, rewriting the tables after each; 0, or the first failing run's status."""

    check_run_folders(runs)
    with folder_lock(out, "benchmarks/ablation.py", tmp_depth=2):  # DIR/<recipe>/seed<K>/ record files
        return _grid(runs, out, progress)


def _grid(runs: list[Run], out: Path, progress: bool) -> int:
    """The body of :func:`run_grid`, run while ``out`` is locked."""
    from mstt.experiment import run_experiment

    records: list[dict[str, Any]] = []
    for run in runs:
        record_path = run.folder / RECORD
        if finished_run(run.item, run.folder) and record_path.is_file():
            print(f"ablation: {run.item.name} seed {run.seed}: finished in {run.folder}; re-read")
        else:
            if not finished_run(run.item, run.folder):
                print(f"ablation: {run.item.name} seed {run.seed}: training in {run.folder}")
                status = run_experiment(run.item.config, run.folder, progress=progress)
                if status != 0:
                    print(f"ablation: {run.item.name} seed {run.seed} stopped (status {status}); "
                          f"{len(records)} finished runs kept in {out / 'ablation.json'}")
                    return status
            write_text_atomic(record_path, json.dumps(make_record(run), indent=2) + "\n")
        records.append(json.loads(record_path.read_text()))
        write_outputs(out, records, runs)
    print(f"wrote {out / 'ablation.md'} and {out / 'ablation.json'}")
    return 0


# ------------------------------------------------------------------ numbers


def _mean_over(values: list[Any]) -> float | None:
    kept = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(kept) / len(kept) if kept else None


def separation_value(record: dict[str, Any], key: str, source: str = "mean") -> float | None:
    """A separation metric of one source, or of the mean (the sources' average when the mean block lacks it)."""
    block = record.get("separation") or {}
    if source != "mean" or key in (block.get("mean") or {}):
        return (block.get(source) or {}).get(key)
    return _mean_over([v.get(key) for s, v in block.items() if s != "mean"])


def transcription_value(record: dict[str, Any], level: str, source: str = "mean") -> float | None:
    """An F1 of one source, or of the mean (the sources' average when the mean block lacks it)."""
    block = record.get("transcription") or {}
    if source != "mean" or level in (block.get("mean") or {}):
        return ((block.get(source) or {}).get(level) or {}).get("f1")
    return _mean_over([(v.get(level) or {}).get("f1") for s, v in block.items() if s != "mean"])


def spread(values: list[float | None]) -> dict[str, Any] | None:
    """``{mean, std, n}`` over the seeds that have the value (std: sample std, None for one seed)."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return None
    return {"mean": statistics.fmean(kept), "std": statistics.stdev(kept) if len(kept) > 1 else None, "n": len(kept)}


def cell(stat: dict[str, Any] | None, digits: int) -> str:
    """"mean ± std" (just the mean for one seed); "" when no run has the value."""
    if stat is None:
        return ""
    mean = f"{stat['mean']:.{digits}f}"
    return mean if stat["std"] is None else f"{mean} ± {stat['std']:.{digits}f}"


def _stat(records: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None]) -> dict[str, Any] | None:
    return spread([get(r) for r in records])


def _value_of(column: str) -> Callable[[dict[str, Any], str], float | None]:
    if column in SEPARATION:
        return lambda r, source: separation_value(r, SEPARATION[column], source)
    return lambda r, source: transcription_value(r, TRANSCRIPTION[column], source)


def set1_rows(records: list[dict[str, Any]], models: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """The set-1 columns (SIR/SAR only when some run has them) and one row per model, averaged over sources."""
    mine = [r for r in records if r["set"] == 1]
    columns = [c for c in (*SEPARATION, *TRANSCRIPTION)
               if c not in ("SIR", "SAR") or any(separation_value(r, SEPARATION[c]) is not None for r in mine)]
    rows = []
    for model in models:
        runs = [r for r in mine if r["model"] == model]
        stats = {c: _stat(runs, lambda r, c=c: _value_of(c)(r, "mean")) for c in columns}
        rows.append({"model": model, "name": MODELS[model], "seeds": len(runs), "metrics": stats})
    return columns, rows


def per_instrument_rows(records: list[dict[str, Any]], grid: dict[int, list[str]]) -> list[dict[str, Any]]:
    """Sets 2-4: per (set, model) row, per source SI-SDRi / onset F1 / on-off F1."""
    rows = []
    for set_id, models in grid.items():
        if set_id == 1:
            continue
        for model in models:
            runs = [r for r in records if r["set"] == set_id and r["model"] == model]
            sources = runs[0]["sources"] if runs else []
            per = {s: {c: _stat(runs, lambda r, c=c, s=s: _value_of(c)(r, s)) for c in ("SI-SDRi", "onset F1", "on/off F1")}
                   for s in sources}
            rows.append({"set": set_id, "model": model, "name": MODELS[model], "seeds": len(runs), "sources": per})
    return rows


def claims(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per set: does Cerberus keep Chimera's SI-SDRi (within 0.2 dB) and beat transcription-only on onset F1?"""
    out = []
    for set_id in sorted({r["set"] for r in records}):
        def stat(model: str, get: Callable[[dict[str, Any]], float | None], set_id: int = set_id) -> dict[str, Any] | None:
            return _stat([r for r in records if r["set"] == set_id and r["model"] == model], get)

        sdr = {m: stat(m, lambda r: separation_value(r, "si_sdri")) for m in ("cerberus", "chimera")}
        f1 = {m: stat(m, lambda r: transcription_value(r, "onset")) for m in ("cerberus", "tr")}
        lines, result = [], {"set": set_id}
        if sdr["cerberus"] and sdr["chimera"]:
            diff = sdr["cerberus"]["mean"] - sdr["chimera"]["mean"]
            holds = diff >= -TOLERANCE_DB
            result["separation"] = {"holds": holds, "difference_db": diff}
            lines.append(
                f"Set {set_id}: Cerberus {'keeps' if holds else 'does NOT keep'} Chimera's separation: mean SI-SDRi "
                f"{cell(sdr['cerberus'], 2)} dB vs Chimera {cell(sdr['chimera'], 2)} dB (difference {diff:+.2f} dB; "
                f"the claim allows down to -{TOLERANCE_DB:.1f} dB){_noise(diff, sdr['cerberus'], sdr['chimera'])}."
            )
        if f1["cerberus"] and f1["tr"]:
            diff = f1["cerberus"]["mean"] - f1["tr"]["mean"]
            holds = diff > 0
            result["transcription"] = {"holds": holds, "difference": diff}
            lines.append(
                f"Set {set_id}: Cerberus {'beats' if holds else 'does NOT beat'} transcription-only on mean onset F1: "
                f"{cell(f1['cerberus'], 3)} vs {cell(f1['tr'], 3)} (difference {diff:+.3f}){_noise(diff, f1['cerberus'], f1['tr'])}."
            )
        if lines:
            parts = [result[k]["holds"] for k in ("separation", "transcription") if k in result]
            result["holds"] = False if False in parts else (True if len(parts) == 2 else None)
            result["text"] = lines
            out.append(result)
    return out


# ------------------------------------------------------------------ outputs


def duration(seconds: float) -> str:
    """Seconds as "42 s", "12.5 min" or "3.20 h"."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


def _noise(diff: float, *stats: dict[str, Any]) -> str:
    """A warning when a difference is smaller than the spread over seeds."""
    stds = [s["std"] for s in stats if s["std"] is not None]
    return f" — smaller than the spread over seeds ({max(stds):.3g}), so not a clear difference" if stds and abs(diff) < max(stds) else ""


def machine(records: list[dict[str, Any]]) -> str:
    """The devices the runs trained on (CPU model with threads, or GPU name)."""
    return "; ".join(sorted({r["device"] for r in records})) or "–"


def data_line(records: list[dict[str, Any]], set_id: int) -> str:
    """The data of one set: kind, sources, tracks and hours per split."""
    data = next((r["data"] for r in records if r["set"] == set_id), None)
    if data is None:
        return f"set {set_id}: no finished run"
    splits = ", ".join(f"{s} {v['tracks']} tracks / {duration(v['hours'] * 3600)}" for s, v in data["splits"].items())
    return f"set {set_id} ({' + '.join(data['sources'])}): {data['kind']}, {splits}"


def grid_of(runs: list[Run]) -> dict[int, list[str]]:
    """Set -> the models run on it, in grid order."""
    grid: dict[int, list[str]] = {}
    for run in runs:
        grid.setdefault(run.set, [])
        if run.model not in grid[run.set]:
            grid[run.set].append(run.model)
    return grid


def markdown(records: list[dict[str, Any]], runs: list[Run]) -> str:
    """ablation.md: setting, the set-1 table, the per-instrument table, the claim."""
    grid = grid_of(runs)
    seeds = sorted({run.seed for run in runs})
    total = sum(r["train_seconds"] for r in records)
    trainer = runs[0].item.config.trainer
    lines = [
        "# Ablation (Cerberus, ICASSP 2020)", "",
        f"Machine: {machine(records)}. Seeds: {', '.join(map(str, seeds))} (`trainer.seed`; the data is the same for every seed). "
        f"Finished runs: {len(records)} of {len(runs)}. Total training time: {duration(total)}. "
        f"Budget per run: {trainer.max_steps} steps" + (f" or {trainer.max_minutes} min" if trainer.max_minutes is not None else "") + ".",
        "", "Data: " + "; ".join(data_line(records, s) for s in grid) + ".", "",
        "Cells: mean ± sample standard deviation over seeds (the mean alone for one seed); empty: the model has no such head "
        "(or no finished run). SI-SDRi, SDR, SIR, SAR in dB; F1 from mir_eval.", "",
    ]
    if 1 in grid:
        columns, rows = set1_rows(records, grid[1])
        lines += ["## Set 1: piano + guitar, averaged over both instruments", "",
                  "| model | " + " | ".join(columns) + " | seeds |", "| --- |" + " ---: |" * (len(columns) + 1)]
        for row in rows:
            digits = [2 if c in SEPARATION else 3 for c in columns]
            lines.append(f"| {row['name']} | " + " | ".join(cell(row["metrics"][c], d) for c, d in zip(columns, digits))
                         + f" | {row['seeds']} |")
        lines.append("")
    rows = per_instrument_rows(records, grid)
    if rows:
        sources = list(dict.fromkeys(s for run in runs if run.set != 1 for s in run.item.config.data.sources))
        lines += ["## Sets 2-4, per instrument: SI-SDRi / onset F1 / on-off F1", "",
                  "| set | model | " + " | ".join(sources) + " | seeds |", "| --- | --- |" + " ---: |" * (len(sources) + 1)]
        for row in rows:
            cells = []
            for s in sources:
                if s not in row["sources"]:
                    cells.append("")
                    continue
                parts = [cell(row["sources"][s][c], 2 if c == "SI-SDRi" else 3) or "–" for c in ("SI-SDRi", "onset F1", "on/off F1")]
                cells.append("" if parts == ["–"] * 3 else " / ".join(parts))
            label = " + ".join(next(r.item.config.data.sources for r in runs if r.set == row["set"]))
            lines.append(f"| {row['set']} ({label}) | {row['name']} | " + " | ".join(cells) + f" | {row['seeds']} |")
        lines.append("")
    found = claims(records)
    lines += ["## The claim", "",
              "Cerberus keeps Chimera's separation (mean SI-SDRi within 0.2 dB or better) "
              "and beats transcription-only on mean onset F1.", ""]
    for claim in found:
        lines += [f"- {text}" for text in claim["text"]]
    by = {v: [str(c["set"]) for c in found if c["holds"] is v] for v in (True, False, None)}
    if found:
        lines += ["", f"The claim holds on set(s) {', '.join(by[True]) or 'none'}"
                  + (f"; it does not hold on set(s) {', '.join(by[False])}" if by[False] else "")
                  + (f"; set(s) {', '.join(by[None])} lack a run needed to judge both parts" if by[None] else "") + "."]
    else:
        lines.append("Not measured yet: no set has finished runs of Cerberus with Chimera or transcription-only.")
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, records: list[dict[str, Any]], runs: list[Run]) -> None:
    """Write DIR/ablation.json and DIR/ablation.md (atomically) from the finished runs' records."""
    grid = grid_of(runs)
    columns, set1 = set1_rows(records, grid.get(1, []))
    payload = {
        "machine": machine(records), "seeds": sorted({run.seed for run in runs}),
        "total_train_seconds": sum(r["train_seconds"] for r in records),
        "data": {str(s): next((r["data"] for r in records if r["set"] == s), None) for s in grid},
        "set1": {"columns": columns, "rows": set1} if 1 in grid else None,
        "sets": per_instrument_rows(records, grid), "claims": claims(records), "runs": records,
    }
    write_text_atomic(out / "ablation.json", json.dumps(payload, indent=2) + "\n")
    write_text_atomic(out / "ablation.md", markdown(records, runs))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, resolve the grid, run it."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every recipe")
    p.add_argument("--out", type=Path, required=True, help="grid folder: DIR/<recipe>/seed<K>/, DIR/ablation.md/.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--overlay", action="append", default=[], metavar="FILE", help="applied to every recipe (repeatable)")
    p.add_argument("--grid", choices=sorted(GRIDS), default="all", help="set1: the 7-row ablation; sets: sets 2-4; all: both")
    p.add_argument("--models", nargs="+", choices=list(MODELS), help="only these rows of the grid")
    p.add_argument("--recipe-dir", type=Path, default=RECIPES, help="where <model>_set<N>.yaml are (default recipes/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    try:
        runs = load_runs(args.out, args.grid, args.seeds, args.models, args.overlay, args.overrides, args.recipe_dir)
        return run_grid(runs, args.out, progress=not args.no_progress)
    except MsttError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
