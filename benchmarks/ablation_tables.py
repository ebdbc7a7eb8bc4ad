"""The outputs of benchmarks/ablation.py: ablation.md and ablation.json from the finished runs' records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from ablation_numbers import (
    CURVE_COLUMN,
    IN_DOMAIN,
    MODELS,
    ONSET_LEVELS,
    SEPARATION,
    Record,
    cell,
    claims,
    curve_line,
    extra_view,
    onset_head_effect,
    per_instrument_rows,
    set1_rows,
    validation_curve,
)

from mstt.fileio import write_text_atomic


class GridRun(Protocol):
    """What the tables read of a grid cell (``ablation.Run``)."""

    set: int
    model: str
    seed: int
    item: Any


def duration(seconds: float) -> str:
    """Seconds as "42 s", "12.5 min" or "3.20 h"."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


def machine(records: list[Record]) -> str:
    """The devices the runs trained on (CPU model with threads, or GPU name)."""
    return "; ".join(sorted({r["device"] for r in records})) or "–"


def data_line(records: list[Record], set_id: int) -> str:
    """The data of one set: kind, sources, tracks and hours per split."""
    data = next((r["data"] for r in records if r["set"] == set_id), None)
    if data is None:
        return f"set {set_id}: no finished run"
    splits = ", ".join(f"{s} {v['tracks']} tracks / {duration(v['hours'] * 3600)}" for s, v in data["splits"].items())
    return f"set {set_id} ({' + '.join(data['sources'])}): {data['kind']}, {splits}"


def grid_of(runs: list[GridRun]) -> dict[int, list[str]]:
    """Set -> the models run on it, in grid order."""
    grid: dict[int, list[str]] = {}
    for run in runs:
        grid.setdefault(run.set, [])
        if run.model not in grid[run.set]:
            grid[run.set].append(run.model)
    return grid


def extra_names(records: list[Record]) -> list[str]:
    """The --extra-data sets some record was evaluated on, in the order first met."""
    return list(dict.fromkeys(name for r in records for name in (r.get("extra") or {})))


# ------------------------------------------------------------------ markdown sections


def header(records: list[Record], runs: list[GridRun]) -> list[str]:
    """Title, machine, seeds, budget, data and how to read a cell."""
    grid = grid_of(runs)
    seeds = sorted({run.seed for run in runs})
    total = sum(r["train_seconds"] for r in records)
    trainer = runs[0].item.config.trainer
    return [
        "# Ablation (Cerberus, ICASSP 2020)", "",
        f"Machine: {machine(records)}. Seeds: {', '.join(map(str, seeds))} (`trainer.seed`; the data is the same for every seed). "
        f"Finished runs: {len(records)} of {len(runs)}. Total training time: {duration(total)}. "
        f"Budget per run: {trainer.max_steps} steps" + (f" or {trainer.max_minutes} min" if trainer.max_minutes is not None else "") + ".",
        "", "Data: " + "; ".join(data_line(records, s) for s in grid) + ".", "",
        "Cells: mean ± sample standard deviation over seeds (the mean alone for one seed); empty: the model has no such head "
        "(or no finished run). SI-SDRi, SDR, SIR, SAR in dB; F1 from mir_eval.", "",
    ]


def set1_table(records: list[Record], models: list[str]) -> list[str]:
    """The set-1 table: one row per model, averaged over both instruments."""
    columns, rows = set1_rows(records, models)
    lines = ["## Set 1: piano + guitar, averaged over both instruments", "",
             "| model | " + " | ".join(columns) + " | seeds |", "| --- |" + " ---: |" * (len(columns) + 1)]
    for row in rows:
        digits = [2 if c in SEPARATION else 3 for c in columns]
        cells = " | ".join(cell(row["metrics"][c], d) for c, d in zip(columns, digits))
        lines.append(f"| {row['name']} | {cells} | {row['seeds']} |")
    return [*lines, ""]


def instrument_table(rows: list[dict[str, Any]], runs: list[GridRun], title: str) -> list[str]:
    """Per (set, model) row, per source "SI-SDRi / onset F1 / on-off F1"; [] without rows."""
    if not rows:
        return []
    shown = {row["set"] for row in rows}
    sources = list(dict.fromkeys(s for run in runs if run.set in shown for s in run.item.config.data.sources))
    lines = [title, "", "| set | model | " + " | ".join(sources) + " | seeds |", "| --- | --- |" + " ---: |" * (len(sources) + 1)]
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
    return [*lines, ""]


def claim_section(found: list[Record]) -> list[str]:
    """The claim, its sentence per set, and the verdict over sets."""
    lines = ["## The claim", "", "Cerberus keeps Chimera's separation (mean SI-SDRi within 0.2 dB or better) "
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
    return [*lines, ""]


def curves_section(curves: dict[int, list[dict[str, Any]]]) -> list[str]:
    """Per set, Chimera vs Cerberus validation loss/mi at each validation step, and where the gap goes; [] without curves."""
    if not any(curves.values()):
        return []
    lines = [f"## Validation curves: Chimera vs Cerberus, `{CURVE_COLUMN}`", "",
             f"`{CURVE_COLUMN}`: the mask-inference head's own (unweighted) loss on the validation windows, from each run's "
             "`logs/validation.csv`; lower is better. Mean ± std over seeds at each validation step.", ""]
    for set_id, rows in curves.items():
        if not rows:
            continue
        lines += [f"### Set {set_id}", "", "| step | Chimera | Cerberus | Cerberus - Chimera |", "| ---: | ---: | ---: | ---: |"]
        for row in rows:
            diff = "" if row["difference"] is None else f"{row['difference']:+.4f}"
            lines.append(f"| {row['step']} | {cell(row['chimera'], 4)} | {cell(row['cerberus'], 4)} | {diff} |")
        line = curve_line(set_id, rows)
        lines += ["", line] if line else []
        lines.append("")
    return lines


def onset_section(effects: list[dict[str, Any]]) -> list[str]:
    """Set 4, Cerberus vs Cerberus + onset head, per data set: onset and on/off F1 per source; [] without both models."""
    if not effects:
        return []
    lines = ["## The onset head's effect (set 4): Cerberus vs Cerberus + onset head", "",
             "Onset F1 and onset+offset F1 from mir_eval, mean ± sample std over seeds; difference: with the head minus "
             "without; \"(< spread)\": smaller than the larger of the two spreads over seeds.", ""]
    for effect in effects:
        seeds = effect["seeds"]
        lines += [f"### {effect['where']} ({seeds['cerberus']} / {seeds['cerberus_onsets']} seeds)", "",
                  "| source | onset F1, Cerberus | + onset head | difference | on/off F1, Cerberus | + onset head | difference |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for row in effect["rows"]:
            cells = []
            for level in ONSET_LEVELS:
                b = row[level]
                diff = "" if b["difference"] is None else f"{b['difference']:+.3f}" + (" (< spread)" if b["within_spread"] else "")
                cells += [cell(b["cerberus"], 3), cell(b["cerberus_onsets"], 3), diff]
            lines.append(f"| {row['source']} | " + " | ".join(cells) + " |")
        lines += ["", *[f"- {text}" for text in effect["text"]], ""]
    return lines


def extra_sections(records: list[Record], runs: list[GridRun]) -> list[str]:
    """One per-instrument table per --extra-data set (every set of the grid, set 1 included)."""
    lines: list[str] = []
    for name in extra_names(records):
        view = extra_view(records, name)
        first = view[0]["extra"][name]
        title = (f"## Extra set `{name}` ({first['kind']}:{first['root']}, split {first['split']}, at most "
                 f"{first['max_examples']} windows), per instrument: SI-SDRi / onset F1 / on-off F1")
        lines += instrument_table(per_instrument_rows(view, grid_of(runs), with_set1=True), runs, title)
    return lines


def markdown(records: list[Record], runs: list[GridRun]) -> str:
    """ablation.md: setting, the set-1 table, the per-instrument table, the claim, curves, the onset head, extra sets."""
    grid = grid_of(runs)
    lines = header(records, runs)
    if 1 in grid:
        lines += set1_table(records, grid[1])
    lines += instrument_table(per_instrument_rows(records, grid), runs, "## Sets 2-4, per instrument: SI-SDRi / onset F1 / on-off F1")
    lines += claim_section(claims(records))
    lines += curves_section({s: validation_curve(records, s) for s in grid})
    lines += onset_section(onset_effects(records))
    lines += extra_sections(records, runs)
    return "\n".join(lines).rstrip("\n") + "\n"


def onset_effects(records: list[Record]) -> list[dict[str, Any]]:
    """The onset head's effect in domain and on each extra set that both models were evaluated on."""
    found = [onset_head_effect(records, where) for where in (IN_DOMAIN, *extra_names(records))]
    return [effect for effect in found if effect is not None]


def payload(records: list[Record], runs: list[GridRun]) -> dict[str, Any]:
    """ablation.json: the tables' numbers and every run's record."""
    grid = grid_of(runs)
    columns, set1 = set1_rows(records, grid.get(1, []))
    return {
        "machine": machine(records), "seeds": sorted({run.seed for run in runs}),
        "total_train_seconds": sum(r["train_seconds"] for r in records),
        "data": {str(s): next((r["data"] for r in records if r["set"] == s), None) for s in grid},
        "set1": {"columns": columns, "rows": set1} if 1 in grid else None,
        "sets": per_instrument_rows(records, grid), "claims": claims(records),
        "validation_curves": {"column": CURVE_COLUMN, "sets": {str(s): validation_curve(records, s) for s in grid}},
        "onset_head": onset_effects(records),
        "extra": {name: per_instrument_rows(extra_view(records, name), grid, with_set1=True) for name in extra_names(records)},
        "models": {m: MODELS[m] for ms in grid.values() for m in ms},
        "runs": records,
    }


def write_outputs(out: Path, records: list[Record], runs: list[GridRun]) -> None:
    """Write DIR/ablation.json and DIR/ablation.md (atomically) from the finished runs' records."""
    write_text_atomic(out / "ablation.json", json.dumps(payload(records, runs), indent=2) + "\n")
    write_text_atomic(out / "ablation.md", markdown(records, runs))
