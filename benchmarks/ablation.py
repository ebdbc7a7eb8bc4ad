"""The paper's ablation grid over seeds: the set-1 table, the per-instrument table of sets 2-4, the claim.

    .venv/bin/python benchmarks/ablation.py --out DIR [--seeds 0 1 2] [--overlay recipes/quick.yaml]
        [--grid set1|sets|all|set4|claim] [--models chimera tr cerberus] [--extra-data NAME=KIND:PATH ...]
        [--extra-max-examples 60] [key=value ...]

Every run (recipe x seed, ``trainer.seed=K``; the data stays the same) trains and evaluates through
:func:`mstt.experiment.run_experiment` in ``DIR/<recipe>/seed<K>/``. Runs of one set and one seed
must agree on data and budget (:func:`mstt.bench.check_comparable`); a folder holding another
recipe's run is refused before anything trains. A finished run is only re-read, so running the same
command again resumes. ``DIR/ablation.md`` and ``DIR/ablation.json`` are rewritten after every
finished run: an interrupted grid keeps what it finished. Cells are "mean ± sample std over seeds".

``--extra-data pop=slakh:/tmp/pop_slakh`` (repeatable): each finished run's best checkpoint is also
evaluated on that folder's test split by ``mstt eval``'s own code (:func:`mstt.commands.eval.evaluate`,
with ``require_all_sources=false`` where the adapter has that option: such sets hold songs without
some of the model's sources), at most ``--extra-max-examples`` windows, into
``DIR/<recipe>/seed<K>/eval-extra-<NAME>/``; the metrics go to the run's record under ``extra.<NAME>``.
Runs re-read later are evaluated when their record lacks that set (or holds it for another folder
or window count). A missing folder, or one without test tracks for a set's sources, is refused
before anything trains. Each record also keeps the rows of the run's ``logs/validation.csv``
(step and every loss column): ablation.md compares Chimera's and Cerberus's validation ``loss/mi``
step by step, and on set 4 Cerberus with and without the onset head (``plugins/mstt-onset-head``).
The tables and their numbers are in ``ablation_tables.py`` and ``ablation_numbers.py``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))  # ablation_tables, ablation_numbers beside this file

from ablation_numbers import MODELS, cell, claims, onset_head_effect, spread  # noqa: E402
from ablation_tables import write_outputs  # noqa: E402

from mstt.bench import BenchItem, check_comparable, device_name, finished_run  # noqa: E402
from mstt.errors import MsttError  # noqa: E402
from mstt.fileio import write_text_atomic  # noqa: E402
from mstt.recipe import load_recipe  # noqa: E402
from mstt.runlock import folder_lock  # noqa: E402

__all__ = ["MODELS", "cell", "claims", "main", "onset_head_effect", "spread"]  # the numbers' helpers, as tests and callers knew them here

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
RECORD = "ablation_run.json"  # a finished run's numbers, kept in its folder for resuming
SET1 = ["dc", "mi", "tr", "chimera", "dc_tr", "mi_tr", "cerberus"]  # the paper's seven rows
GRIDS = {
    "set1": {1: SET1},
    "sets": {s: ["chimera", "tr", "cerberus"] for s in (2, 3, 4)},
    "set4": {4: ["chimera", "tr", "cerberus", "cerberus_onsets"]},  # with the onset-head plugin's recipe
}
GRIDS["all"] = {**GRIDS["set1"], **GRIDS["sets"]}
GRIDS["claim"] = {**GRIDS["set1"], **GRIDS["set4"]}  # issue 16: the claim at more steps, and the onset head
EXTRA_SPLIT = "test"
# The scoring rules an extra set's metrics were made under; a record with older ones is evaluated
# again. 2: a source alone in its window has no SI-SDRi (before, one such window of the pop set
# put a set-1 model's mean at -135 dB).
EXTRA_SCORING = 2
EXTRA_NAME = re.compile(r"[A-Za-z0-9_-]+")  # it names a folder: eval-extra-<NAME>


@dataclass
class Run:
    """One cell of the grid: a recipe of one set, trained with one seed, in its own folder."""

    set: int
    model: str
    seed: int
    item: BenchItem
    folder: Path


@dataclass
class Extra:
    """An --extra-data test set: its name, dataset kind and folder, the data options and window cap it is evaluated with."""

    text: str  # as given, for messages
    name: str
    kind: str
    root: str
    max_examples: int
    options: list[str] = dataclasses.field(default_factory=list)

    def matches(self, saved: dict[str, Any] | None) -> bool:
        """Whether a record's ``extra.<name>`` entry was evaluated on this folder with these settings."""
        return saved is not None and all(saved.get(k) == v for k, v in self.settings().items())

    def settings(self) -> dict[str, Any]:
        """What an evaluation on this set depends on, as stored with its metrics."""
        return {"kind": self.kind, "root": self.root, "split": EXTRA_SPLIT, "max_examples": self.max_examples,
                "options": self.options, "scoring": EXTRA_SCORING}


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
        "validation": validation_rows(run.folder / "logs" / "validation.csv"),
    }


def validation_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a run's validation.csv as ``{"step", "loss", "loss/<head>"...}`` (the last row of a repeated step wins)."""
    if not path.is_file():
        return []
    rows: dict[int, dict[str, Any]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = int(float(row["step"]))
            except (KeyError, TypeError, ValueError):
                continue  # a row cut short by a kill: no step to place it at
            rows[step] = {"step": step, **{k: _number(v) for k, v in row.items() if k and k.startswith("loss")}}
    return [rows[k] for k in sorted(rows)]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def run_grid(runs: list[Run], out: Path, progress: bool = True, extras: list[Extra] | None = None) -> int:
    """Train (or re-read) every run, rewriting the tables after each; 0, or the first failing run's status."""
    check_run_folders(runs)
    check_extras(extras or [], runs)
    with folder_lock(out, "benchmarks/ablation.py", tmp_depth=2):  # DIR/<recipe>/seed<K>/ record files
        return _grid(runs, out, progress, extras or [])


def _grid(runs: list[Run], out: Path, progress: bool, extras: list[Extra]) -> int:
    """The body of :func:`run_grid`, run while ``out`` is locked."""
    from mstt.experiment import run_experiment

    records: list[dict[str, Any]] = []
    stopped = 0  # a run's non-zero status (130: interrupted): nothing more trains or evaluates; finished runs still count
    for run in runs:
        record_path = run.folder / RECORD
        if not finished_run(run.item, run.folder):
            if stopped:
                continue
            print(f"ablation: {run.item.name} seed {run.seed}: training in {run.folder}")
            stopped = run_experiment(run.item.config, run.folder, progress=progress)
            if stopped:
                print(f"ablation: {run.item.name} seed {run.seed} stopped (status {stopped}); no more runs train, "
                      f"the finished ones are kept in {out / 'ablation.json'}")
                continue
        elif record_path.is_file():
            print(f"ablation: {run.item.name} seed {run.seed}: finished in {run.folder}; re-read")
        if not record_path.is_file():
            write_text_atomic(record_path, json.dumps(make_record(run), indent=2) + "\n")
        records.append(complete_record(run, json.loads(record_path.read_text()), [] if stopped else extras, progress))
        write_outputs(out, records, runs)
    if stopped:
        return stopped
    print(f"wrote {out / 'ablation.md'} and {out / 'ablation.json'}")
    return 0


# ------------------------------------------------------------------ extra test sets and records made before them


def complete_record(run: Run, record: dict[str, Any], extras: list[Extra], progress: bool) -> dict[str, Any]:
    """Add to a run's record what it lacks: its validation rows, its metrics on each extra set; saved after each."""
    record_path = run.folder / RECORD
    if "validation" not in record:  # a record written before the curves were kept
        record["validation"] = validation_rows(run.folder / "logs" / "validation.csv")
        write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")
    for extra in extras:
        if not extra.matches((record.get("extra") or {}).get(extra.name)):
            record.setdefault("extra", {})[extra.name] = evaluate_extra(run, extra, progress)
            write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")
    return record


def evaluate_extra(run: Run, extra: Extra, progress: bool) -> dict[str, Any]:
    """Evaluate the run's best checkpoint (last.pt without one) on an extra set, as ``mstt eval`` does."""
    from mstt.commands.eval import evaluate

    checkpoint = run.folder / "checkpoints" / "best.pt"
    if not checkpoint.is_file():
        checkpoint = checkpoint.with_name("last.pt")
    print(f"ablation: {run.item.name} seed {run.seed}: evaluating {checkpoint.name} on {extra.name} "
          f"({extra.kind}:{extra.root}, at most {extra.max_examples} windows)")
    metrics, _ = evaluate(
        checkpoint, data=f"{extra.kind}:{extra.root}", data_options=extra.options, split=EXTRA_SPLIT,
        max_examples=extra.max_examples, device=str(run.item.config.trainer.device),
        out=run.folder / f"eval-extra-{extra.name}", progress=progress,
    )
    return {**extra.settings(), "checkpoint": checkpoint.name, "n_examples": metrics.get("n_examples"),
            "skipped": len(metrics.get("skipped") or []),
            "separation": metrics.get("separation"), "transcription": metrics.get("transcription")}


def parse_extra(text: str, max_examples: int) -> Extra:
    """``NAME=KIND:PATH`` -> :class:`Extra` (the path made absolute); a malformed one is a one-line MsttError."""
    name, eq, spec = text.partition("=")
    kind, colon, root = spec.partition(":")
    if not (eq and colon and name and kind and root):
        raise MsttError(f"--extra-data {text}: write NAME=KIND:PATH, e.g. --extra-data pop=slakh:/tmp/pop_slakh")
    if not EXTRA_NAME.fullmatch(name):
        raise MsttError(f"--extra-data {text}: the name '{name}' names a folder; use letters, digits, '_' and '-' only")
    return Extra(text, name, kind, str(Path(root).expanduser().resolve()), max_examples)


def check_extras(extras: list[Extra], runs: list[Run]) -> None:
    """Refuse, before anything trains, a repeated name, a missing folder, or a set without test tracks for a set's sources."""
    from mstt.commands.eval import parse_data_options
    from mstt.experiment import build_adapter
    from mstt.plugins import get_registry

    names = [e.name for e in extras]
    for extra in extras:
        if names.count(extra.name) > 1:
            raise MsttError(f"--extra-data {extra.text}: the name '{extra.name}' is given twice; give each set its own name")
        if not Path(extra.root).is_dir():
            raise MsttError(f"--extra-data {extra.text}: no folder {extra.root}; render it first "
                            "(benchmarks/openmsx_slakh.py --out DIR) or fix the path")
        try:
            schema = get_registry().get("datasets", extra.kind, where=f"--extra-data {extra.text}").options
            fields = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else set()
            # Songs of another set lack some of the model's sources: score the ones they hold.
            extra.options = ["require_all_sources=false"] if "require_all_sources" in fields else []
            for set_id, run in {r.set: r for r in reversed(runs)}.items():  # each set's first run
                adapter = build_adapter(run.item.config, extra.kind, extra.root, parse_data_options(extra.options))
                if not adapter.tracks(EXTRA_SPLIT):
                    raise MsttError(f"no {EXTRA_SPLIT} track holds any of set {set_id}'s sources; "
                                    f"point it at a folder with {EXTRA_SPLIT}/ tracks")
        except MsttError as exc:
            text = str(exc)
            raise MsttError(text if text.startswith("--extra-data") else f"--extra-data {extra.text}: {text}") from None


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, resolve the grid, run it."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every recipe")
    p.add_argument("--out", type=Path, required=True, help="grid folder: DIR/<recipe>/seed<K>/, DIR/ablation.md/.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--overlay", action="append", default=[], metavar="FILE", help="applied to every recipe (repeatable)")
    p.add_argument("--grid", choices=sorted(GRIDS), default="all",
                   help="set1: the 7-row ablation; sets: sets 2-4; all: both; set4: Chimera, TR, Cerberus and Cerberus + onset "
                        "head on set 4; claim: set1 and set4")
    p.add_argument("--models", nargs="+", choices=list(MODELS), help="only these rows of the grid")
    p.add_argument("--recipe-dir", type=Path, default=RECIPES, help="where <model>_set<N>.yaml are (default recipes/)")
    p.add_argument("--extra-data", action="append", default=[], metavar="NAME=KIND:PATH",
                   help="also evaluate every run on this set's test split, e.g. pop=slakh:/tmp/pop_slakh (repeatable)")
    p.add_argument("--extra-max-examples", type=int, default=60, metavar="N", help="windows per extra set at most (default 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    try:
        if args.extra_max_examples < 1:
            raise MsttError(f"--extra-max-examples {args.extra_max_examples}: need at least 1")
        extras = [parse_extra(text, args.extra_max_examples) for text in args.extra_data]
        runs = load_runs(args.out, args.grid, args.seeds, args.models, args.overlay, args.overrides, args.recipe_dir)
        return run_grid(runs, args.out, progress=not args.no_progress, extras=extras)
    except MsttError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
