"""Trained models on test sets mstt did not generate: per source, the songs where the stem beats the mixture.

    .venv/bin/python benchmarks/ood_scores.py runs/bench --set pop=/tmp/pop_slakh/test \\
        --set openmsx=/tmp/openmsx_slakh/test --out runs/ood

Each RUN is a run folder (``checkpoints/best.pt``, else ``last.pt``), a checkpoint file, or a folder
whose subfolders (two levels down at most) are run folders: ``mstt bench --out OUT`` writes one per
recipe, ``benchmarks/ablation.py`` one per recipe and seed. Each ``--set NAME=SPLIT_FOLDER`` is a
Slakh-layout split (track folders with ``metadata.yaml``, ``stems/`` and ``mix.flac``, as
``benchmarks/openmsx_slakh.py`` renders them). Every track's ``mix.flac`` is separated in this
process by :func:`mstt.load` (``mstt separate``'s own path: chunks, cross-fade, resampling to the
model's rate and back) and each stem is scored by ``score_stems.py``'s :func:`score_estimates`
against the track's own stems of that class, at the file's rate. Waveform separators
(``plugins/mstt-asteroid``) and Cerberus alike: only the stems count, not the notes.

Per model and set, per source: the songs holding the source, the stems beating the mixture
(SI-SDRi > 0 dB), the median SI-SDRi, and every track's SI-SDRi in the JSON. A source the model
does not separate is counted as "no stem" (a deep-clustering model's ``cluster1``... have no
instrument and count so too). ``OUT/ood_scores.json`` and ``OUT/ood_scores.md`` are rewritten after
each model and set; running the same command again skips every model + set the JSON holds for the
same checkpoint (path and sha256) and split folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # mstt from a checkout, as score_stems.py does
sys.path.insert(0, str(Path(__file__).resolve().parent))  # score_stems beside this file

from score_stems import score_estimates, summarize  # noqa: E402

from mstt.errors import MsttError  # noqa: E402
from mstt.fileio import check_out_dir, write_text_atomic  # noqa: E402
from mstt.runlock import folder_lock  # noqa: E402

RESULT = "ood_scores"  # OUT/ood_scores.json and .md
SET_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class Model:
    """A trained model to score: its name in the tables and the checkpoint it is loaded from."""

    name: str
    checkpoint: Path


@dataclass
class TestSet:
    """A --set: its name and its Slakh-layout split folder's tracks."""

    name: str
    split: Path
    tracks: list[Path]


# ------------------------------------------------------------------ what to score


def checkpoint_of(folder: Path) -> Path | None:
    """A run folder's best.pt, else its last.pt; None when it has neither."""
    for name in ("best.pt", "last.pt"):
        if (folder / "checkpoints" / name).is_file():
            return folder / "checkpoints" / name
    return None


def model_name(run: Path) -> str:
    """A run folder's name; an ablation seed folder (``seed0``) is named with its recipe's folder."""
    return f"{run.parent.name}/{run.name}" if re.fullmatch(r"seed\d+", run.name) else run.name


def find_models(paths: list[Path]) -> list[Model]:
    """Every RUN argument as models: a checkpoint file, a run folder, or the run folders under a folder.

    A checkpoint in a run's ``checkpoints/`` is named by its run; any other file by its own name
    (``/tmp/cand/release_v2.pt`` -> ``release_v2``), so exported models side by side keep apart.
    """
    models: list[Model] = []
    for path in paths:
        if path.is_file():
            name = model_name(path.parent.parent) if path.parent.name == "checkpoints" else path.stem
            models.append(Model(name, path))
            continue
        if not path.is_dir():
            raise MsttError(f"{path}: no such file or folder; pass a run folder, a checkpoint, or a folder of runs")
        runs = [path] if checkpoint_of(path) else sorted(
            {c.parent for pattern in ("*/checkpoints", "*/*/checkpoints") for c in path.glob(pattern) if checkpoint_of(c.parent)})
        if not runs:
            raise MsttError(f"{path}: no checkpoints/best.pt or last.pt in it or in its subfolders; "
                            "pass a run folder (mstt run/bench --out), a checkpoint, or a folder of runs")
        models += [Model(model_name(run), checkpoint_of(run)) for run in runs]
    names = [m.name for m in models]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise MsttError(f"two runs are named '{twice}' ({', '.join(str(m.checkpoint) for m in models if m.name == twice)}); "
                        "score them in separate commands (another --out each)")
    return models


def parse_set(text: str) -> TestSet:
    """``NAME=SPLIT_FOLDER`` -> :class:`TestSet` with its track folders; a bad one is a one-line MsttError."""
    name, eq, folder = text.partition("=")
    if not (eq and name and folder):
        raise MsttError(f"--set {text}: write NAME=SPLIT_FOLDER, e.g. --set pop=/tmp/pop_slakh/test")
    if not SET_NAME.fullmatch(name):
        raise MsttError(f"--set {text}: use letters, digits, '_' and '-' in the name '{name}'")
    split = Path(folder).expanduser().resolve()
    if not split.is_dir():
        raise MsttError(f"--set {text}: no folder {split}; render it first (benchmarks/openmsx_slakh.py) or fix the path")
    tracks = sorted(t for t in split.iterdir() if (t / "metadata.yaml").is_file() and (t / "mix.flac").is_file())
    if not tracks:
        raise MsttError(f"--set {text}: no track folder (metadata.yaml + mix.flac) in {split}; "
                        "pass a split folder such as /tmp/pop_slakh/test")
    return TestSet(name, split, tracks)


# ------------------------------------------------------------------ scoring


def score_model(separator: Any, test_set: TestSet) -> dict[str, Any]:
    """Separate every track of the set with ``separator`` and score its stems: per-track SI-SDRi and per-source summary."""
    per_track: dict[str, dict[str, float | None]] = {}
    skipped: list[dict[str, str]] = []
    started = time.perf_counter()
    audio_seconds = 0.0
    for k, track in enumerate(test_set.tracks, 1):
        try:
            mix, rate = sf.read(str(track / "mix.flac"), dtype="float32", always_2d=True)
            audio_seconds += len(mix) / rate
            scores, _, _ = score_estimates(track, separator.separate(mix, int(rate)).stems)
        except (MsttError, sf.LibsndfileError) as exc:
            # An unreadable, silent or empty mixture, a missing stem file, stems at two rates: the other songs still count.
            skipped.append({"track": track.name, "reason": str(exc)})
            print(f"  {test_set.name} {k}/{len(test_set.tracks)} {track.name}: skipped ({exc})", flush=True)
            continue
        per_track[track.name] = {s: None if pair is None else pair[0] - pair[1] for s, pair in scores.items()}
        print(f"  {test_set.name} {k}/{len(test_set.tracks)} {track.name}", flush=True)
    return {
        "split": str(test_set.split), "tracks": len(per_track), "skipped": skipped, "audio_seconds": round(audio_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1), "sources": source_summary(per_track), "per_track": per_track,
    }


def source_summary(per_track: dict[str, dict[str, float | None]]) -> dict[str, dict[str, Any]]:
    """Per source: songs holding it, songs without a stem of it, and score_stems' summary of the scored ones."""
    out: dict[str, dict[str, Any]] = {}
    for scores in per_track.values():
        for source, gain in scores.items():
            row = out.setdefault(source, {"songs": 0, "no_stem": 0, "gains": []})
            row["songs"] += 1
            if gain is None:
                row["no_stem"] += 1
            else:
                row["gains"].append(gain)
    summary = summarize({s: row["gains"] for s, row in out.items() if row["gains"]})
    return {s: {"songs": row["songs"], "no_stem": row["no_stem"], "beat_mix": 0, "median_si_sdri": None, "mean_si_sdri": None,
                **{k: v for k, v in summary.get(s, {}).items() if k != "tracks"}} for s, row in out.items()}


# ------------------------------------------------------------------ outputs


def cell(row: dict[str, Any] | None) -> str:
    """"beat/songs, median +x.xx dB"; "no stem (n songs)" when the model separates no such source; "" when absent."""
    if row is None:
        return ""
    if row["median_si_sdri"] is None:
        return f"no stem ({row['songs']} songs)"
    scored = row["songs"] - row["no_stem"]
    return f"{row['beat_mix']}/{scored}, {row['median_si_sdri']:+.2f} dB"


def markdown(result: dict[str, Any]) -> str:
    """ood_scores.md: one table per set, a row per model, a column per source."""
    lines = ["# Out-of-domain separation", "",
             "Cell: stems that beat the mixture (SI-SDRi > 0 dB) / songs holding the source, and the median SI-SDRi over "
             "those songs; \"no stem\": the model separates no such source. References: each track's own stems summed per "
             "class (benchmarks/score_stems.py), at the file's rate.", ""]
    sets = list(dict.fromkeys(s for m in result["models"].values() for s in m["sets"]))
    for name in sets:
        done = {m: v["sets"][name] for m, v in result["models"].items() if name in v["sets"]}
        sources = list(dict.fromkeys(s for v in done.values() for s in v["sources"]))
        first = next(iter(done.values()))
        skipped = f"; {len(first['skipped'])} songs skipped (see the JSON)" if first.get("skipped") else ""
        lines += [f"## {name} ({first['split']}, {first['tracks']} songs, {first['audio_seconds'] / 60:.1f} min{skipped})", "",
                  "| model | " + " | ".join(sources) + " | seconds |", "| --- |" + " ---: |" * (len(sources) + 1)]
        for model, v in done.items():
            lines.append(f"| {model} | " + " | ".join(cell(v["sources"].get(s)) for s in sources) + f" | {v['seconds']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def write_outputs(out: Path, result: dict[str, Any]) -> None:
    """OUT/ood_scores.json and OUT/ood_scores.md, atomically."""
    write_text_atomic(out / f"{RESULT}.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(out / f"{RESULT}.md", markdown(result))


def load_result(out: Path) -> dict[str, Any]:
    """What an earlier command left in OUT (resuming), or an empty result."""
    path = out / f"{RESULT}.json"
    if not path.is_file():
        return {"models": {}}
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MsttError(f"{path}: not JSON ({exc.msg}); move it away or use another --out") from None
    if not isinstance(result, dict) or not isinstance(result.get("models"), dict):
        raise MsttError(f"{path}: not an ood_scores.json (no 'models'); move it away or use another --out")
    return result


def run(models: list[Model], sets: list[TestSet], out: Path, device: str) -> dict[str, Any]:
    """Score every model on every set not already in OUT's JSON; write the outputs after each."""
    import mstt

    result = load_result(out)
    todo: list[tuple[Model, dict[str, Any], list[TestSet]]] = []
    for model in models:
        stamp = checkpoint_stamp(model.checkpoint)
        entry = result["models"].get(model.name)
        # A JSON written before stamps were kept has none: its scores are taken to be of this file.
        if entry is None or entry.get("checkpoint") != str(model.checkpoint.resolve()) or entry.get("stamp", stamp) != stamp:
            # a new checkpoint, or the same path trained further: its earlier scores no longer describe it
            entry = result["models"][model.name] = {"checkpoint": str(model.checkpoint.resolve()), "stamp": stamp, "sets": {}}
        entry["stamp"] = stamp
        pending = [t for t in sets if entry["sets"].get(t.name, {}).get("split") != str(t.split)]
        for test_set in sets:
            if test_set not in pending:
                print(f"ood_scores: {model.name} on {test_set.name}: in {out / RESULT}.json already; skipped")
        if pending:
            todo.append((model, entry, pending))
    for model, _, _ in todo:  # a bad checkpoint fails before any scoring, and only one model is held at a time
        mstt.load(model.checkpoint, device="cpu")  # loaded to check it, then dropped
    for model, entry, pending in todo:
        separator = mstt.load(model.checkpoint, device=device)
        for test_set in pending:
            print(f"ood_scores: {model.name} on {test_set.name} ({len(test_set.tracks)} songs)", flush=True)
            entry["sets"][test_set.name] = score_model(separator, test_set)
            write_outputs(out, result)
        del separator
    write_outputs(out, result)
    return result


def checkpoint_stamp(path: Path) -> str:
    """The sha256 of a checkpoint file: a retrained or re-exported one is scored afresh, a copied one is not."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; score; 0, or 2 with one line for a bad argument."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders, checkpoints, or folders of runs (mstt bench --out)")
    p.add_argument("--set", dest="sets", action="append", required=True, metavar="NAME=SPLIT_FOLDER",
                   help="a Slakh-layout split folder, e.g. pop=/tmp/pop_slakh/test (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="folder for ood_scores.json and ood_scores.md")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    args = p.parse_args(argv)
    try:
        check_out_dir(args.out)
        sets = [parse_set(text) for text in args.sets]
        names = [s.name for s in sets]
        if len(set(names)) < len(names):
            raise MsttError(f"--set: the name '{next(n for n in names if names.count(n) > 1)}' is given twice; give each set its own")
        models = find_models(args.runs)
        with folder_lock(args.out, "benchmarks/ood_scores.py"):  # two commands on one --out would overwrite each other
            run(models, sets, args.out, args.device)
    except MsttError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out / RESULT}.json and {args.out / RESULT}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
