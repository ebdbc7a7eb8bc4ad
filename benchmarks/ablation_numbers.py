"""The numbers of benchmarks/ablation.py: per-seed values read from run records, their spread, the claim.

Every function here reads the records that ``ablation.py`` keeps (``ablation_run.json`` per run
folder) and returns plain, JSON-able values; ``ablation_tables.py`` turns them into markdown.
"""

from __future__ import annotations

import statistics
from typing import Any, Callable

MODELS = {  # recipe prefix -> the row name; the paper's seven in the paper's order, then the plugin's row
    "dc": "Deep clustering",
    "mi": "Mask inference",
    "tr": "Transcription only",
    "chimera": "Chimera",
    "dc_tr": "DC + TR",
    "mi_tr": "MI + TR",
    "cerberus": "Cerberus",
    "cerberus_onsets": "Cerberus + onset head",  # plugins/mstt-onset-head, recipes/cerberus_onsets_set4.yaml
}
SEPARATION = {"SI-SDRi": "si_sdri", "SDR": "sdr", "SIR": "sir", "SAR": "sar"}
TRANSCRIPTION = {"frame F1": "frame", "onset F1": "onset", "on/off F1": "onset_offset"}
TOLERANCE_DB = 0.2  # Cerberus keeps Chimera's separation when its mean SI-SDRi is at most this much lower
IN_DOMAIN = "in-domain"  # the name of the recipe's own test split beside the --extra-data sets
ONSET_LEVELS = {"onset": "onset F1", "onset_offset": "on/off F1"}
CURVE_COLUMN = "loss/mi"  # the separation head's validation loss, which Chimera and Cerberus both have

Record = dict[str, Any]
Stat = dict[str, Any]


def _mean_over(values: list[Any]) -> float | None:
    kept = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(kept) / len(kept) if kept else None


def separation_value(record: Record, key: str, source: str = "mean") -> float | None:
    """A separation metric of one source, or of the mean (the sources' average when the mean block lacks it)."""
    block = record.get("separation") or {}
    if source != "mean" or key in (block.get("mean") or {}):
        return (block.get(source) or {}).get(key)
    return _mean_over([v.get(key) for s, v in block.items() if s != "mean"])


def transcription_value(record: Record, level: str, source: str = "mean") -> float | None:
    """An F1 of one source, or of the mean (the sources' average when the mean block lacks it)."""
    block = record.get("transcription") or {}
    if source != "mean" or level in (block.get("mean") or {}):
        return ((block.get(source) or {}).get(level) or {}).get("f1")
    return _mean_over([(v.get(level) or {}).get("f1") for s, v in block.items() if s != "mean"])


def spread(values: list[float | None]) -> Stat | None:
    """``{mean, std, n}`` over the seeds that have the value (std: sample std, None for one seed)."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return None
    return {"mean": statistics.fmean(kept), "std": statistics.stdev(kept) if len(kept) > 1 else None, "n": len(kept)}


def cell(stat: Stat | None, digits: int) -> str:
    """"mean ± std" (just the mean for one seed); "" when no run has the value."""
    if stat is None:
        return ""
    mean = f"{stat['mean']:.{digits}f}"
    return mean if stat["std"] is None else f"{mean} ± {stat['std']:.{digits}f}"


def noise(diff: float, *stats: Stat | None) -> str:
    """A warning when a difference is smaller than the spread over seeds."""
    stds = [s["std"] for s in stats if s is not None and s["std"] is not None]
    return f" — smaller than the spread over seeds ({max(stds):.3g}), so not a clear difference" if stds and abs(diff) < max(stds) else ""


def within_spread(diff: float, *stats: Stat | None) -> bool:
    """Whether ``diff`` is smaller than the largest sample std of ``stats`` (the wording of :func:`noise`)."""
    return bool(noise(diff, *stats))


def _stat(records: list[Record], get: Callable[[Record], float | None]) -> Stat | None:
    return spread([get(r) for r in records])


def value_of(column: str) -> Callable[[Record, str], float | None]:
    """A getter ``(record, source) -> value`` for a table column ("SI-SDRi", "onset F1", ...)."""
    if column in SEPARATION:
        return lambda r, source: separation_value(r, SEPARATION[column], source)
    return lambda r, source: transcription_value(r, TRANSCRIPTION[column], source)


def extra_view(records: list[Record], name: str) -> list[Record]:
    """The records that were evaluated on extra set ``name``, with that set's metrics in place of the in-domain ones."""
    out = []
    for record in records:
        extra = (record.get("extra") or {}).get(name)
        if extra is not None:
            out.append({**record, "separation": extra.get("separation"), "transcription": extra.get("transcription")})
    return out


def set1_rows(records: list[Record], models: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """The set-1 columns (SIR/SAR only when some run has them) and one row per model, averaged over sources."""
    mine = [r for r in records if r["set"] == 1]
    columns = [c for c in (*SEPARATION, *TRANSCRIPTION)
               if c not in ("SIR", "SAR") or any(separation_value(r, SEPARATION[c]) is not None for r in mine)]
    rows = []
    for model in models:
        runs = [r for r in mine if r["model"] == model]
        stats = {c: _stat(runs, lambda r, c=c: value_of(c)(r, "mean")) for c in columns}
        rows.append({"model": model, "name": MODELS[model], "seeds": len(runs), "metrics": stats})
    return columns, rows


def per_instrument_rows(records: list[Record], grid: dict[int, list[str]], with_set1: bool = False) -> list[dict[str, Any]]:
    """Per (set, model) row, per source SI-SDRi / onset F1 / on-off F1 (set 1 only ``with_set1``)."""
    rows = []
    for set_id, models in grid.items():
        if set_id == 1 and not with_set1:
            continue
        for model in models:
            runs = [r for r in records if r["set"] == set_id and r["model"] == model]
            sources = runs[0]["sources"] if runs else []
            per = {s: {c: _stat(runs, lambda r, c=c, s=s: value_of(c)(r, s)) for c in ("SI-SDRi", "onset F1", "on/off F1")}
                   for s in sources}
            rows.append({"set": set_id, "model": model, "name": MODELS[model], "seeds": len(runs), "sources": per})
    return rows


def _claim_lines(set_id: int, sdr: dict[str, Stat | None], f1: dict[str, Stat | None]) -> tuple[list[str], Record]:
    """The claim's sentences and verdicts of one set, from the mean SI-SDRi and onset F1 stats."""
    lines, result = [], {"set": set_id}
    if sdr["cerberus"] and sdr["chimera"]:
        diff = sdr["cerberus"]["mean"] - sdr["chimera"]["mean"]
        holds = diff >= -TOLERANCE_DB
        result["separation"] = {"holds": holds, "difference_db": diff}
        lines.append(
            f"Set {set_id}: Cerberus {'keeps' if holds else 'does NOT keep'} Chimera's separation: mean SI-SDRi "
            f"{cell(sdr['cerberus'], 2)} dB vs Chimera {cell(sdr['chimera'], 2)} dB (difference {diff:+.2f} dB; "
            f"the claim allows down to -{TOLERANCE_DB:.1f} dB){noise(diff, sdr['cerberus'], sdr['chimera'])}."
        )
    if f1["cerberus"] and f1["tr"]:
        diff = f1["cerberus"]["mean"] - f1["tr"]["mean"]
        holds = diff > 0
        result["transcription"] = {"holds": holds, "difference": diff}
        lines.append(
            f"Set {set_id}: Cerberus {'beats' if holds else 'does NOT beat'} transcription-only on mean onset F1: "
            f"{cell(f1['cerberus'], 3)} vs {cell(f1['tr'], 3)} (difference {diff:+.3f}){noise(diff, f1['cerberus'], f1['tr'])}."
        )
    return lines, result


def claims(records: list[Record]) -> list[Record]:
    """Per set: does Cerberus keep Chimera's SI-SDRi (within 0.2 dB) and beat transcription-only on onset F1?"""
    out = []
    for set_id in sorted({r["set"] for r in records}):
        def stat(model: str, get: Callable[[Record], float | None], set_id: int = set_id) -> Stat | None:
            return _stat([r for r in records if r["set"] == set_id and r["model"] == model], get)

        sdr = {m: stat(m, lambda r: separation_value(r, "si_sdri")) for m in ("cerberus", "chimera")}
        f1 = {m: stat(m, lambda r: transcription_value(r, "onset")) for m in ("cerberus", "tr")}
        lines, result = _claim_lines(set_id, sdr, f1)
        if lines:
            parts = [result[k]["holds"] for k in ("separation", "transcription") if k in result]
            result["holds"] = False if False in parts else (True if len(parts) == 2 else None)
            result["text"] = lines
            out.append(result)
    return out


# ------------------------------------------------------------------ the onset head (issue 16, item 4)


def onset_head_effect(records: list[Record], where: str = IN_DOMAIN) -> dict[str, Any] | None:
    """Set 4, Cerberus vs Cerberus + onset head: onset and on/off F1 per source and mean, over seeds; None without both."""
    mine = records if where == IN_DOMAIN else extra_view(records, where)
    runs = {m: [r for r in mine if r["set"] == 4 and r["model"] == m] for m in ("cerberus", "cerberus_onsets")}
    if not runs["cerberus"] or not runs["cerberus_onsets"]:
        return None
    rows = []
    for source in [*runs["cerberus"][0]["sources"], "mean"]:
        row: dict[str, Any] = {"source": source}
        for level in ONSET_LEVELS:
            a, b = (_stat(runs[m], lambda r, level=level, source=source: transcription_value(r, level, source)) for m in runs)
            diff = b["mean"] - a["mean"] if a and b else None
            row[level] = {"cerberus": a, "cerberus_onsets": b, "difference": diff,
                          "within_spread": None if diff is None else within_spread(diff, a, b)}
        if any(row[level]["cerberus"] or row[level]["cerberus_onsets"] for level in ONSET_LEVELS):
            rows.append(row)  # sources that are never transcribed (other) have no row
    seeds = {m: len(v) for m, v in runs.items()}
    return {"where": where, "seeds": seeds, "rows": rows, "text": _onset_lines(where, rows)}


def _onset_lines(where: str, rows: list[dict[str, Any]]) -> list[str]:
    """One sentence per level on the mean: the difference, and whether it is smaller than the spread over seeds."""
    mean = next((r for r in rows if r["source"] == "mean"), None)
    lines = []
    for level, label in ONSET_LEVELS.items():
        block = (mean or {}).get(level) or {}
        a, b, diff = block.get("cerberus"), block.get("cerberus_onsets"), block.get("difference")
        if diff is None:
            continue
        verb = "raises" if diff > 0 else "lowers" if diff < 0 else "leaves"
        lines.append(
            f"{where}: the onset head {verb} mean {label}: {cell(b, 3)} with it vs {cell(a, 3)} without "
            f"(difference {diff:+.3f}){noise(diff, a, b)}."
        )
    return lines


# ------------------------------------------------------------------ validation curves (issue 16, item 3)


def validation_curve(records: list[Record], set_id: int, column: str = CURVE_COLUMN) -> list[dict[str, Any]]:
    """Chimera vs Cerberus ``column`` at each validation step of one set, over seeds; [] without both."""
    runs = {m: [r for r in records if r["set"] == set_id and r["model"] == m and r.get("validation")]
            for m in ("chimera", "cerberus")}
    if not runs["chimera"] or not runs["cerberus"]:
        return []

    def at(record: Record, step: int) -> float | None:
        return next((row.get(column) for row in record["validation"] if row.get("step") == step), None)

    steps = sorted({row["step"] for rs in runs.values() for r in rs for row in r["validation"] if row.get(column) is not None})
    rows = []
    for step in steps:
        a, b = (_stat(runs[m], lambda r, step=step: at(r, step)) for m in ("chimera", "cerberus"))
        diff = b["mean"] - a["mean"] if a and b else None
        rows.append({"step": step, "chimera": a, "cerberus": b, "difference": diff})
    return rows


def curve_line(set_id: int, rows: list[dict[str, Any]], column: str = CURVE_COLUMN) -> str | None:
    """Where the Cerberus - Chimera gap of a validation curve starts, ends, and is smallest; None without two steps."""
    both = [r for r in rows if r["difference"] is not None]
    if len(both) < 2:
        return None
    first, last = both[0], both[-1]
    closest = min(both, key=lambda r: abs(r["difference"]))
    change = abs(last["difference"]) - abs(first["difference"])
    if first["difference"] * last["difference"] < 0:  # the other model leads at the end
        trend = "changes sign"
    else:
        trend = "stays level" if abs(change) < 5e-5 else "grows" if change > 0 else "shrinks"
    return (f"Set {set_id}: the gap in validation {column} (Cerberus - Chimera; > 0: Cerberus separates worse) {trend} "
            f"from {first['difference']:+.4f} at step {first['step']} to {last['difference']:+.4f} at step {last['step']}; "
            f"it is smallest ({closest['difference']:+.4f}) at step {closest['step']}"
            f"{noise(last['difference'], last['chimera'], last['cerberus'])}.")
