"""``mstt bench``: several recipes trained on the same data with the same budget, one comparison table.

Each recipe (overlays and ``key=value`` overrides applied to all) is trained and evaluated by
:func:`mstt.experiment.run_experiment` in ``OUT/<recipe name>/``; then one row per recipe goes
to ``OUT/bench.json`` and ``OUT/bench.md``, rewritten after every row so that an interrupted
bench keeps what it finished. Running the same command again resumes: a run folder whose
``metrics.json`` exists for the same resolved recipe is only re-read.

A row: ``recipe``, ``params``, ``si_sdri`` and ``onset_f1`` (per source and ``mean``, or None
when the model has no such output), ``train_throughput`` (audio seconds trained per second of
the trainer's wall time, validation passes included: steps x batch x crop seconds / elapsed),
``rtf`` (seconds that ``mstt separate``'s path, :class:`mstt.inference.Separator`, takes to separate
and transcribe a fixed 30-second mixture, / 30, on the bench device, after a warm-up),
``peak_memory_mb`` (CUDA: peak memory allocated by torch during training and evaluation; CPU:
peak resident set size of the process over the same span, from ``/proc/self/status``) and
``device``.

The bench protects the user (:class:`StepGuard`, one per recipe): from each recipe's first steps
it projects the steps its budget allows and its peak memory, and refuses the recipe — it stops
training, gets no row, and the bench goes on to the next and exits 2 — when it would get under
10% of the steps of the fastest recipe measured so far in this bench, or pass 75% of the
machine's memory; ``--force`` turns each refusal into a one-line warning.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import yaml
from omegaconf import DictConfig, OmegaConf

from mstt.benchguard import BenchRefused, PeakMemory, StepGuard, machine_memory_mb
from mstt.errors import MsttError
from mstt.fileio import write_text_atomic
from mstt.recipe import load_recipe
from mstt.runlock import folder_lock

RTF_SECONDS = 30.0  # length of the fixed mixture the real-time factor is measured on
ROW_FILE = "bench_row.json"  # the finished row, kept in each run folder for resuming
# Settings that must be equal across benched recipes: the data (and how it is evaluated), and the budget.
SAME_KEYS = (
    "data.kind",
    "data.root",
    "data.sources",
    "data.sample_rate",
    "data.crop_seconds",
    "data.eval_segment_seconds",
    "data.options",
    "eval.split",
    "eval.max_examples",
    "trainer.max_steps",
    "trainer.max_minutes",
    "trainer.device",
)


@dataclass
class BenchItem:
    """One recipe to bench: the file it came from and its resolved config."""

    path: str
    config: DictConfig

    @property
    def name(self) -> str:
        """The recipe's name, which is also its run folder's name."""
        return str(self.config.name)


# ------------------------------------------------------------------ recipes


def is_overlay(path: str | Path) -> bool:
    """A YAML file with neither ``name:`` nor ``base:`` at its top is an overlay, not a recipe."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False  # load_recipe reports the file's problem with its own message
    return not (isinstance(raw, dict) and ("name" in raw or "base" in raw))


def _value(config: DictConfig, key: str) -> Any:
    node = OmegaConf.select(config, key)
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) or OmegaConf.is_list(node) else node


def check_comparable(items: list[BenchItem]) -> None:
    """Refuse recipes that differ in data, evaluation split or budget, naming the first mismatch."""
    if not items:
        raise MsttError("mstt bench: no recipe given (an overlay alone is not a recipe: it has no name: or base:)")
    names: dict[str, str] = {}
    for item in items:
        if item.name in names:
            raise MsttError(
                f"{item.path}: its name '{item.name}' is also the name of {names[item.name]}; "
                "each benched recipe needs its own name (its run folder)"
            )
        names[item.name] = item.path
    first = items[0]
    for item in items[1:]:
        for key in SAME_KEYS:
            a, b = _value(first.config, key), _value(item.config, key)
            if a != b:
                raise MsttError(
                    f"{item.path}: {key} is {b!r} but {first.path} has {a!r}; mstt bench compares recipes "
                    "on the same data and budget (set it in an overlay that applies to all)"
                )


def load_items(recipes: list[str], overlays: list[str], overrides: list[str]) -> list[BenchItem]:
    """Resolve every recipe with the overlays and overrides; check that they are comparable."""
    items = [BenchItem(r, load_recipe([r, *overlays], overrides)) for r in recipes]
    check_comparable(items)
    return items


# ------------------------------------------------------------------ machine


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (the platform's processor name elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """``cuda: <GPU name>`` or ``cpu: <model> (<n> threads)``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_name()} ({torch.get_num_threads()} threads)"


# ------------------------------------------------------------------ measurements


def fixed_mixture(sample_rate: int, seconds: float) -> torch.Tensor:
    """A reproducible music-like mixture ``(1, samples)``: tones with decays, plus faint noise."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    mix = 0.01 * torch.randn(t.shape, generator=gen)
    for k in range(8):
        f0 = 55.0 * 2 ** (k * 7 / 12)
        phase = (t * (k + 1) * 0.5) % 1.0  # each tone restarts at its own rate
        mix += 0.1 * torch.sin(2 * math.pi * f0 * t) * torch.exp(-4 * phase)
    return (mix / mix.abs().max() * 0.5).unsqueeze(0)


def real_time_factor(model: torch.nn.Module, config: DictConfig, device: torch.device) -> float:
    """Seconds for ``mstt separate``'s path (:class:`mstt.inference.Separator`) per second of a fixed mixture."""
    from mstt.inference import Separator

    sample_rate = int(config.data.sample_rate)
    seconds = RTF_SECONDS
    mixture = fixed_mixture(sample_rate, seconds)[0].numpy()
    separator = Separator(model, config, device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    separator.separate(mixture[:sample_rate], sample_rate)  # warm-up: kernels, allocator
    sync()
    start = time.perf_counter()
    separator.separate(mixture, sample_rate)
    sync()
    return (time.perf_counter() - start) / seconds


def _per_source(block: dict[str, Any] | None, pick: Callable[[dict[str, Any]], Any]) -> dict[str, Any] | None:
    """``{source: pick(metrics)}`` of a metrics.json block, or None when the block is absent."""
    if not block:
        return None
    return {name: pick(values) for name, values in block.items()}


def make_row(item: BenchItem, out: Path, peak_mb: float | None, device: torch.device) -> dict[str, Any]:
    """The bench row of a finished run folder: its metrics.json, last.pt's timing, the RTF of best.pt."""
    from mstt.checkpoints import model_from_checkpoint
    from mstt.train import load_checkpoint

    config = item.config
    metrics = json.loads((out / "metrics.json").read_text())
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    step, elapsed = int(last["step"]), float(last["elapsed"])
    del last
    audio = step * int(config.trainer.batch_size) * float(config.data.crop_seconds)
    best_path = out / "checkpoints" / "best.pt"
    model, _, _ = model_from_checkpoint(best_path, config)
    transcription = metrics.get("transcription")
    return {
        "recipe": item.name,
        "params": int(sum(model.parameter_counts().values())),
        "si_sdri": _per_source(metrics.get("separation"), lambda v: v.get("si_sdri")),
        "onset_f1": _per_source(transcription, lambda v: (v.get("onset") or {}).get("f1")),
        "train_throughput": audio / elapsed if elapsed > 0 else None,
        "rtf": real_time_factor(model, config, device),
        "peak_memory_mb": peak_mb,
        "device": device_name(device),
        "steps": step,
        "train_seconds": elapsed,
    }


def finished_run(item: BenchItem, out: Path) -> bool:
    """True when ``out`` holds an evaluated run of exactly this resolved recipe."""
    if not (out / "metrics.json").is_file() or not (out / "recipe.yaml").is_file():
        return False
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    return saved == OmegaConf.to_container(item.config, resolve=True)


def check_folders(items: list[BenchItem], out: Path) -> None:
    """Refuse, before anything trains, a run folder that holds another recipe's run."""
    from mstt.train.checkpoint import recipe_difference

    for item in items:
        saved_path = out / item.name / "recipe.yaml"
        if not saved_path.is_file():
            continue
        diff = recipe_difference(yaml.safe_load(saved_path.read_text()), OmegaConf.to_container(item.config, resolve=True))
        if diff is not None:
            key, there, here = diff
            raise MsttError(
                f"{out / item.name} holds a run of a different recipe ({key}: {there!r} there, {here!r} here); "
                "use another --out, or the same recipes and overlays to resume"
            )


# ------------------------------------------------------------------ tables


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(rows: list[dict[str, Any]], items: list[BenchItem]) -> str:
    """bench.md: the setting, one summary table, and per-source SI-SDRi / onset F1."""
    first = items[0].config
    data, trainer = first.data, first.trainer
    sources = list(data.sources)
    budget = f"{trainer.max_steps} steps" + (
        f" or {trainer.max_minutes} minutes, whichever comes first" if trainer.max_minutes is not None else ""
    )
    lines = [
        "# mstt bench",
        "",
        f"Data: {data.kind}{f' at {data.root}' if data.root else ''}, sources {', '.join(sources)}, "
        f"{data.sample_rate} Hz, {data.crop_seconds} s crops, options {json.dumps(_value(first, 'data.options'))}; "
        f"evaluated on split {first.eval.split}. Budget: {budget}.",
        "",
        "| recipe | params | SI-SDRi mean (dB) | onset F1 mean | train throughput (audio s/s) | RTF | peak memory (MB) | steps | device |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        mean_sdr = (r["si_sdri"] or {}).get("mean")
        mean_f1 = (r["onset_f1"] or {}).get("mean")
        lines.append(
            f"| {r['recipe']} | {r['params']:,} | {_num(mean_sdr)} | {_num(mean_f1, 3)} | "
            f"{_num(r['train_throughput'])} | {_num(r['rtf'], 4)} | {_num(r['peak_memory_mb'], 0)} | "
            f"{r.get('steps', '–')} | {r['device']} |"
        )
    header = " | ".join(f"SI-SDRi {s}" for s in sources) + " | " + " | ".join(f"onset F1 {s}" for s in sources)
    lines += ["", "Per source:", "", f"| recipe | {header} |", "| --- |" + " ---: |" * (2 * len(sources))]
    for r in rows:
        sdr = [_num((r["si_sdri"] or {}).get(s)) for s in sources]
        f1 = [_num((r["onset_f1"] or {}).get(s), 3) for s in sources]
        lines.append(f"| {r['recipe']} | " + " | ".join(sdr + f1) + " |")
    lines += [
        "",
        "SI-SDRi: SI-SDR improvement over the mixture, dB (higher is better). Throughput: audio seconds "
        "trained per second of training wall time, validation included. RTF: seconds `mstt separate` "
        f"takes to separate and transcribe a fixed {RTF_SECONDS:g}-second mixture per second of audio (lower is faster). "
        "Peak memory: torch's "
        "CUDA allocator, or the process's resident set on CPU. – : the model has no such output.",
        "",
    ]
    return "\n".join(lines)


def write_tables(out: Path, rows: list[dict[str, Any]], items: list[BenchItem]) -> None:
    """Write OUT/bench.json and OUT/bench.md (atomically: an interrupt leaves the previous pair)."""
    write_text_atomic(out / "bench.json", json.dumps({"rows": rows}, indent=2, allow_nan=False) + "\n")
    write_text_atomic(out / "bench.md", markdown(rows, items))


# ------------------------------------------------------------------ the bench


def _clean(value: Any) -> Any:
    """NaN/inf -> None, recursively (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def run_bench(items: list[BenchItem], out: Path, progress: bool = True, force: bool = False) -> int:
    """Train, evaluate and measure every item in ``out/<name>/``; 0, the first failing run's status, or 2 when the guard refused one."""
    from mstt.nn.build import build_model

    out = Path(out)
    check_folders(items, out)
    for item in items:
        build_model(item.config)  # every recipe's errors surface before anything trains
    with folder_lock(out, "mstt bench"):
        return _bench(items, out, progress, force)


def _fastest(rows: list[dict[str, Any]]) -> tuple[str, int] | None:
    """``(recipe, steps)`` of the row with the most training steps, or None without rows."""
    counted = [(str(r["recipe"]), int(r["steps"])) for r in rows if r.get("steps") is not None]
    return max(counted, key=lambda pair: pair[1]) if counted else None


def _bench(items: list[BenchItem], out: Path, progress: bool, force: bool = False) -> int:
    """The body of :func:`run_bench`, run while ``out`` is locked."""
    from mstt.devices import resolve_device
    from mstt.experiment import run_experiment

    device = resolve_device(str(items[0].config.trainer.device))
    total_mb = machine_memory_mb(device)
    rows: list[dict[str, Any]] = []
    refused: list[str] = []
    for item in items:
        folder = out / item.name
        row_path = folder / ROW_FILE
        if finished_run(item, folder) and row_path.is_file():
            print(f"bench: {item.name}: finished in {folder}; re-read")
            rows.append(json.loads(row_path.read_text()))
            write_tables(out, rows, items)
            continue
        peak = None
        if not finished_run(item, folder):
            print(f"bench: {item.name}: training in {folder}")
            trainer = item.config.trainer
            with PeakMemory(device) as memory:
                guard = StepGuard(
                    item.name, None if trainer.max_minutes is None else float(trainer.max_minutes) * 60,
                    int(trainer.max_steps), _fastest(rows), total_mb, memory.megabytes, force,
                )
                try:
                    status = run_experiment(item.config, folder, progress=progress, on_step=guard)
                except BenchRefused as exc:
                    print(f"bench: {exc}", flush=True)
                    refused.append(item.name)
                    continue
            if status != 0:
                print(f"bench: {item.name} stopped (status {status}); {len(rows)} finished rows kept in {out / 'bench.json'}")
                return status
            peak = memory.megabytes()
        row = _clean(make_row(item, folder, peak, device))
        write_text_atomic(row_path, json.dumps(row, indent=2) + "\n")
        rows.append(row)
        write_tables(out, rows, items)
    if rows:
        print(f"wrote {out / 'bench.md'} and {out / 'bench.json'}")
    if refused:
        print(f"bench: refused {', '.join(refused)} (no rows); run again with --force to train them anyway")
        return 2
    return 0
