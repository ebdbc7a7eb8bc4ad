"""Sharing the cores: a training run and ``mstt separate`` side by side vs each alone, per thread setting.

    .venv/bin/python benchmarks/shared_cores.py --out DIR [--settings NAME ... | all] [--repeats 2]
        [--train-steps 60] [--warmup-steps 5] [--audio-seconds 600] [--size quick|paper] [--checkpoint CK]

Not a pytest suite, and only meaningful on an otherwise idle machine (the load average is saved
with the result). Two workloads, each in a fresh process of this checkout, all on the CPU:

- ``train``: the demo's training step in a loop (``cerberus_set4`` + ``quick.yaml``, batch 8 of
  2-second crops, ``trainer.precision: auto``, the DC head on a tenth of the frames; forward,
  backward, clip, Adam on one fixed batch, as benchmarks/bench_training_step.py does), each
  step's start and end written to a file;
- ``separate``: ``mstt separate``'s path (``separate_file``: decode, downmix, resample, chunks,
  stems + MIDI + piano roll written) on one generated ``--audio-seconds`` stereo 44.1 kHz WAV,
  with a randomly initialised model of ``--size`` (speed does not depend on the weights), after
  a 2-second warm-up.

For each setting: ``train`` alone (``--train-steps`` after ``--warmup-steps``), ``separate``
alone, then both at once: ``train`` starts, warms up, then ``separate`` runs while ``train``
keeps stepping; the training steps that lie wholly inside the separation's span are the shared
ones. Slowdown = shared / alone (seconds a step for training, seconds for the separation);
``combined`` = 1 / slowdown(train) + 1 / slowdown(separate), the work both do per second in
units of one alone: 1.0 is no better than running them one after the other, 2.0 is each at full
speed. ``DIR/shared_cores.json`` and ``DIR/shared_cores.md`` hold every run and the table,
rewritten after each setting.

Why the slowdown exceeds 2x (see mstt/runtime.py): torch's Linux CPU wheel runs its thread pool,
MKL and oneDNN on GNU OpenMP (``torch/lib/libgomp.so.1``) with one thread per core in each
process. A libgomp thread with nothing to do spins ``GOMP_SPINCOUNT`` times (300000 by default,
~3 ms) before sleeping, and libgomp shortens the spin only when its own process's threads
outnumber the cores. Two processes of N threads on N cores oversubscribe 2x; a thread spinning
at a barrier holds a core that the thread it waits for (of its own process, descheduled in
favour of the other process) needs, so each of the thousands of small parallel regions a second
of an LSTM can cost a scheduler time slice instead of microseconds. The settings below remove
the spinning (``OMP_WAIT_POLICY=PASSIVE``, a short ``GOMP_SPINCOUNT``), the oversubscription
(fewer threads per process), or both; ``KMP_BLOCKTIME`` is the LLVM/Intel runtime's knob and a
control here (libgomp ignores it); the inter-op pool (``torch.set_num_interop_threads``) runs
nothing in these workloads and is another control.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# No torch at the top: a child must set the OpenMP environment before torch loads libgomp.
from mstt.fileio import write_text_atomic  # noqa: E402

RECIPES = [ROOT / "recipes" / "cerberus_set4.yaml", ROOT / "recipes" / "quick.yaml"]
# Variables that decide threads and waiting: the children start without the caller's values of them.
WAIT_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")  # how OpenMP threads wait
CLEARED = (*WAIT_KEYS, "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY",
           "KMP_AFFINITY", "OMP_DYNAMIC", "ONEDNN_PRIMITIVE_CACHE_CAPACITY")
HALF = max(1, (os.cpu_count() or 2) // 2)
MIN_STEPS_INSIDE = 5  # training steps inside the separation's span below which the shared step time is rough


@dataclass
class Setting:
    """How both processes run: environment, whether mstt's entry-point rule is applied, threads per process."""

    description: str
    env: dict[str, str] = field(default_factory=dict)
    rule: bool = False  # separate with mstt.runtime.separation_threads, as `mstt separate` does without --threads
    train_threads: int | None = None  # torch.set_num_threads; None: torch's default (one per core)
    separate_threads: int | None = None
    interop_threads: int | None = None  # torch.set_num_interop_threads in both


SETTINGS = {
    "torch-defaults": Setting("before: torch's defaults (one thread per core, libgomp spins ~3 ms)"),
    "mstt-default": Setting("after: mstt separate's rule (the cores other processes leave free, at least 1)", rule=True),
    "passive": Setting("OMP_WAIT_POLICY=PASSIVE in both (tried as the rule; costs a lone process)",
                       env={"OMP_WAIT_POLICY": "PASSIVE"}),
    "spin-10k": Setting("GOMP_SPINCOUNT=10000 (a ~0.1 ms spin)", env={"GOMP_SPINCOUNT": "10000"}),
    "separate-1-thread": Setting("torch's defaults, mstt separate --threads 1", separate_threads=1),
    "passive+separate-1-thread": Setting("PASSIVE in both and mstt separate --threads 1", env={"OMP_WAIT_POLICY": "PASSIVE"},
                                         separate_threads=1),
    "half-threads-each": Setting(f"{HALF} thread(s) per process (half the cores each), libgomp's spin",
                                 train_threads=HALF, separate_threads=HALF),
    "active": Setting("OMP_WAIT_POLICY=ACTIVE (spin for minutes: the worst case)", env={"OMP_WAIT_POLICY": "ACTIVE"}),
    "kmp-blocktime-0": Setting("KMP_BLOCKTIME=0 (LLVM/Intel OpenMP's knob; a control: libgomp ignores it)",
                               env={"KMP_BLOCKTIME": "0"}),
    "passive+interop-1": Setting("PASSIVE and torch.set_num_interop_threads(1) (a control)", env={"OMP_WAIT_POLICY": "PASSIVE"},
                                 interop_threads=1),
}
DEFAULT_SETTINGS = ["torch-defaults", "mstt-default", "passive", "spin-10k", "separate-1-thread", "half-threads-each"]


# ------------------------------------------------------------------ children


def _child_setup(setting: dict[str, Any], role: str) -> dict[str, Any]:
    """Apply a setting in this fresh process (torch's pools; for a separation under the rule, its threads); what is in effect."""
    import torch

    threads = setting[f"{role}_threads"]
    if setting["rule"] and role == "separate" and not threads:
        from mstt.runtime import busy_cores, separation_threads

        threads = separation_threads(torch.get_num_threads(), busy_cores())
    if threads:
        torch.set_num_threads(threads)
    if setting["interop_threads"]:
        torch.set_num_interop_threads(setting["interop_threads"])
    return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "env": {k: os.environ[k] for k in CLEARED if k in os.environ}}


def child_train(setting: dict[str, Any], log: Path, steps: int, warmup: int, stop: Path | None) -> None:
    """Train the demo model on one fixed batch; one line ``start end`` (monotonic seconds) per step after the warm-up."""
    effective = _child_setup(setting, "train")
    import torch
    from bench_training_step import make_batch
    from torch import nn

    from mstt.nn.build import build_model
    from mstt.recipe import load_recipe
    from mstt.train.precision import resolve_precision

    config = load_recipe(RECIPES, ["trainer.device=cpu"])
    torch.manual_seed(0)
    device = torch.device("cpu")
    precision = resolve_precision(str(config.trainer.precision), bool(config.trainer.amp), device)
    model = build_model(config).train()
    batch = make_batch(model, int(config.trainer.batch_size), float(config.data.crop_seconds))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config.optim.lr))

    def step() -> None:
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=precision.autocast):
            total, _ = model.losses(batch)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(model.parameters(), float(config.optim.grad_clip))
        optimizer.step()

    for _ in range(warmup):
        step()
    with open(log, "w") as f:
        f.write(json.dumps({"ready": True, "precision": precision.name, **effective}) + "\n")
        f.flush()
        done = 0
        while (stop is None and done < steps) or (stop is not None and not stop.exists()):
            t0 = time.monotonic()
            step()
            f.write(f"{t0:.6f} {time.monotonic():.6f}\n")
            f.flush()
            done += 1


def child_separate(setting: dict[str, Any], checkpoint: str, audio: str, out: str) -> None:
    """Separate ``audio`` as ``mstt separate`` does after a 2-second warm-up; print its span as one JSON line."""
    effective = _child_setup(setting, "separate")
    import numpy as np
    import soundfile as sf

    from mstt.commands.separate import add_parser, separate_file
    from mstt.inference import load

    separator = load(checkpoint, "cpu")
    warm, rate = sf.read(audio, frames=2 * 44100, dtype="float32")
    separator.separate(np.asarray(warm), rate)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["separate", checkpoint, audio, "--out", out, "--quiet"])
    t0 = time.monotonic()
    separate_file(separator, Path(audio), Path(out) / Path(audio).stem, args, {"stems", "midi", "png"})
    t1 = time.monotonic()
    print(json.dumps({"start": t0, "end": t1, "seconds": t1 - t0, **effective}))


def child_checkpoint(path: str, size: str) -> None:
    """A randomly initialised model of ``size`` (bench_separate's sizes) saved as a checkpoint."""
    from bench_separate import make_checkpoint

    make_checkpoint(Path(path), size)


# ------------------------------------------------------------------ the parent


def child_env(setting: Setting) -> dict[str, str]:
    """The caller's environment without its thread and wait settings, plus the setting's, with this checkout first."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(setting.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def spawn(args: list[str], setting: Setting, **kwargs: Any) -> subprocess.Popen:
    spec = json.dumps(asdict(setting))
    return subprocess.Popen([sys.executable, __file__, "--child", *args, "--spec", spec], env=child_env(setting), cwd=ROOT,
                            text=True, **kwargs)


def finish(proc: subprocess.Popen, what: str, timeout: float) -> str:
    """Wait for a child; its stdout, or RuntimeError with the end of its stderr."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"{what}: still running after {timeout:.0f} s; killed") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {(err or '').strip()[-1500:]}")
    return out or ""


def read_steps(log: Path) -> tuple[dict[str, Any], list[tuple[float, float]]]:
    lines = log.read_text().splitlines()
    header = json.loads(lines[0])
    spans = [tuple(map(float, line.split())) for line in lines[1:] if len(line.split()) == 2]
    return header, spans  # type: ignore[return-value]


def train_alone(setting: Setting, work: Path, steps: int, warmup: int, timeout: float) -> dict[str, Any]:
    log = work / "train_alone.txt"
    proc = spawn(["train", str(log), str(steps), str(warmup), ""], setting, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finish(proc, "train alone", timeout)
    header, spans = read_steps(log)
    times = [b - a for a, b in spans]
    return {"steps": len(times), "step_s_mean": statistics.fmean(times), "step_s_median": statistics.median(times),
            "threads": header["threads"], "interop_threads": header["interop_threads"], "precision": header["precision"],
            "env": header["env"]}


def separate_alone(setting: Setting, work: Path, checkpoint: Path, audio: Path, timeout: float) -> dict[str, Any]:
    proc = spawn(["separate", str(checkpoint), str(audio), str(work / "separated")], setting,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    result = json.loads(finish(proc, "separate alone", timeout).strip().splitlines()[-1])
    return {"seconds": result["seconds"], "threads": result["threads"], "interop_threads": result["interop_threads"],
            "env": result["env"]}


def together(setting: Setting, work: Path, checkpoint: Path, audio: Path, warmup: int, timeout: float) -> dict[str, Any]:
    """Training steps while the separation runs: its seconds, and the training steps inside its span."""
    log, stop = work / "train_shared.txt", work / "stop"
    stop.unlink(missing_ok=True)
    log.unlink(missing_ok=True)
    train = spawn(["train", str(log), "0", str(warmup), str(stop)], setting, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not (log.exists() and log.read_text().startswith("{")):
            if train.poll() is not None:
                finish(train, "train (shared)", 1)
            if time.monotonic() > deadline:
                raise RuntimeError("train (shared) did not finish its warm-up in time")
            time.sleep(0.2)
        sep = spawn(["separate", str(checkpoint), str(audio), str(work / "separated")], setting,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        result = json.loads(finish(sep, "separate (shared)", timeout).strip().splitlines()[-1])
    finally:
        stop.touch()
    finish(train, "train (shared)", timeout)
    _, spans = read_steps(log)
    inside = [b - a for a, b in spans if a >= result["start"] and b <= result["end"]]
    return {"separate_seconds": result["seconds"], "train_steps_inside": len(inside),
            "step_s_mean": statistics.fmean(inside) if inside else None,
            "step_s_median": statistics.median(inside) if inside else None}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over repeats of each measurement, and the slowdowns and combined rate from them."""
    def mean(path: tuple[str, str]) -> float | None:
        values = [r[path[0]][path[1]] for r in runs if r[path[0]][path[1]] is not None]
        return statistics.fmean(values) if values else None

    train_alone_s, sep_alone_s = mean(("train_alone", "step_s_mean")), mean(("separate_alone", "seconds"))
    train_shared_s, sep_shared_s = mean(("together", "step_s_mean")), mean(("together", "separate_seconds"))
    train_slow = train_shared_s / train_alone_s if train_shared_s and train_alone_s else None
    sep_slow = sep_shared_s / sep_alone_s if sep_shared_s and sep_alone_s else None
    return {
        "train_alone_step_s": train_alone_s, "train_shared_step_s": train_shared_s, "train_slowdown": train_slow,
        "separate_alone_s": sep_alone_s, "separate_shared_s": sep_shared_s, "separate_slowdown": sep_slow,
        "combined": 1 / train_slow + 1 / sep_slow if train_slow and sep_slow else None,
        "train_steps_inside": min(r["together"]["train_steps_inside"] for r in runs),
        "repeats": len(runs),
    }


def _f(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def markdown(result: dict[str, Any]) -> str:
    """shared_cores.md: one row per setting, and the before/after line."""
    p, m = result["params"], result["machine"]
    base = result["settings"].get("torch-defaults", {}).get("summary")
    lines = [
        "# Sharing the cores: training and mstt separate side by side",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['openmp']}); load average "
        f"{m['load_start']:.2f} at the start, {m.get('load_end', float('nan')):.2f} at the end. {m['date']}.",
        f"Training: the demo's step (cerberus_set4 + quick.yaml, batch 8 x 2 s, precision {p.get('precision', '?')}), "
        f"{p['train_steps']} steps alone after {p['warmup_steps']} warm-up. Separation: {p['audio_seconds']:g} s of "
        f"stereo 44.1 kHz WAV, {p['model']} model. Means over {p['repeats']} repeat(s).",
        "",
        "Slowdown = both at once / alone. Combined = 1/slowdown(train) + 1/slowdown(separate): 1.0 is no better "
        "than one after the other, 2.0 is both at full speed. \"x base\": alone time / alone time under torch-defaults "
        "(what a setting costs a process that has the machine to itself).",
        "",
        "| setting | train s/step alone | x base | shared | slowdown | separate s alone | x base | shared | slowdown | combined |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, entry in result["settings"].items():
        s = entry.get("summary")
        if not s:
            continue
        tb = s["train_alone_step_s"] / base["train_alone_step_s"] if base else None
        sb = s["separate_alone_s"] / base["separate_alone_s"] if base else None
        lines.append(
            f"| {name} | {_f(s['train_alone_step_s'], 3)} | {_f(tb)} | {_f(s['train_shared_step_s'], 3)} | "
            f"**{_f(s['train_slowdown'])}** | {_f(s['separate_alone_s'], 1)} | {_f(sb)} | {_f(s['separate_shared_s'], 1)} | "
            f"**{_f(s['separate_slowdown'])}** | {_f(s['combined'])} |")
    few = [name for name, entry in result["settings"].items()
           if entry.get("summary") and entry["summary"]["train_steps_inside"] < MIN_STEPS_INSIDE]
    if few:
        lines += ["", f"Fewer than {MIN_STEPS_INSIDE} training steps lay inside the separation ({', '.join(few)}): "
                      "their shared training figure is rough or missing; a longer --audio-seconds gives more."]
    lines += ["", "Settings:", ""]
    lines += [f"- `{name}`: {entry['description']}" for name, entry in result["settings"].items()]
    after = result["settings"].get("mstt-default", {}).get("summary")
    if base and after and base["separate_slowdown"] and after["separate_slowdown"]:
        lines += ["", f"Before/after (torch-defaults -> mstt-default): training slowdown {_f(base['train_slowdown'])} -> "
                      f"{_f(after['train_slowdown'])}, separation slowdown {_f(base['separate_slowdown'])} -> "
                      f"{_f(after['separate_slowdown'])}, combined {_f(base['combined'])} -> {_f(after['combined'])}."]
    return "\n".join(lines) + "\n"


def openmp_runtime() -> str:
    """Which OpenMP library torch's wheel carries (read from the files, without loading torch here)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("torch")
        lib = Path(spec.origin).parent / "lib" if spec and spec.origin else None
        names = sorted(p.name for p in lib.iterdir() if p.name.startswith(("libgomp", "libomp", "libiomp"))) if lib else []
    except OSError:
        names = []
    return ", ".join(names) or "OpenMP runtime not found in torch/lib"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version

    return {"cpu": cpu, "cores": os.cpu_count(), "torch": version("torch"), "openmp": openmp_runtime(),
            "load_start": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, metavar="NAME",
                        help=f"some of {', '.join(SETTINGS)}, or all (default: {' '.join(DEFAULT_SETTINGS)})")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=60, help="training steps timed alone (default 60)")
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--audio-seconds", type=float, default=600.0, help="length of the separated file (default 600)")
    parser.add_argument("--size", choices=["quick", "paper"], default="quick", help="separation model size (default quick)")
    parser.add_argument("--checkpoint", type=Path, help="separate with this model instead")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds any one process may take")
    args = parser.parse_args(argv)
    names = list(SETTINGS) if args.settings == ["all"] else args.settings
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting {', '.join(unknown)}; choose from {', '.join(SETTINGS)} or all")
    if args.train_steps < 2 or args.repeats < 1 or args.audio_seconds < 3:
        parser.error("need --train-steps >= 2, --repeats >= 1 and --audio-seconds >= 3")
    from bench_separate import make_recording

    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"machine": machine(), "settings": {}, "params": {
        "train_steps": args.train_steps, "warmup_steps": args.warmup_steps, "audio_seconds": args.audio_seconds,
        "model": str(args.checkpoint) if args.checkpoint else f"random {args.size}-size cerberus_set4", "repeats": args.repeats}}
    if result["machine"]["load_start"] > 0.25 * (os.cpu_count() or 1):
        print(f"warning: load average {result['machine']['load_start']:.1f}: the machine is busy, the timings will say "
              "more about the other jobs than about these settings", file=sys.stderr)
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = work / f"{args.size}.pt"
        finish(subprocess.Popen([sys.executable, __file__, "--child", "checkpoint", str(checkpoint), args.size], cwd=ROOT,
                                env=child_env(Setting("")), text=True, stderr=subprocess.PIPE), "making the model", args.timeout)
    audio = make_recording(work / "recording.wav", args.audio_seconds)
    for name in names:
        result["settings"][name] = {"description": SETTINGS[name].description, "spec": asdict(SETTINGS[name]), "runs": []}
    print(f"{len(names)} settings x {args.repeats} repeats; {result['machine']['cores']} cores, "
          f"load average {result['machine']['load_start']:.2f}", flush=True)
    for repeat in range(args.repeats):
        for name in names:
            setting, entry = SETTINGS[name], result["settings"][name]
            run = {"repeat": repeat,
                   "train_alone": train_alone(setting, work, args.train_steps, args.warmup_steps, args.timeout),
                   "separate_alone": separate_alone(setting, work, checkpoint, audio, args.timeout),
                   "together": together(setting, work, checkpoint, audio, args.warmup_steps, args.timeout)}
            result["params"]["precision"] = run["train_alone"]["precision"]
            entry["runs"].append(run)
            entry["summary"] = summarise(entry["runs"])
            s = entry["summary"]
            print(f"[{repeat + 1}/{args.repeats}] {name:<26} train {_f(s['train_alone_step_s'], 3)} -> "
                  f"{_f(s['train_shared_step_s'], 3)} s/step (x{_f(s['train_slowdown'])}), separate "
                  f"{_f(s['separate_alone_s'], 1)} -> {_f(s['separate_shared_s'], 1)} s (x{_f(s['separate_slowdown'])}), "
                  f"combined {_f(s['combined'])}", flush=True)
            result["machine"]["load_end"] = os.getloadavg()[0]
            write_text_atomic(args.out / "shared_cores.json", json.dumps(result, indent=2) + "\n")
            write_text_atomic(args.out / "shared_cores.md", markdown(result))
    print(f"wrote {args.out / 'shared_cores.json'} and {args.out / 'shared_cores.md'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        role, rest = sys.argv[2], sys.argv[3:]
        spec = json.loads(rest[rest.index("--spec") + 1]) if "--spec" in rest else {}
        rest = rest[: rest.index("--spec")] if "--spec" in rest else rest
        if role == "train":
            log, steps, warmup, stop = rest
            child_train(spec, Path(log), int(steps), int(warmup), Path(stop) if stop else None)
        elif role == "separate":
            child_separate(spec, *rest)
        elif role == "checkpoint":
            child_checkpoint(*rest)
        sys.exit(0)
    sys.exit(main())
