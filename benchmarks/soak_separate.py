"""Soak check of ``mstt separate``: 100 short recordings in one call, peak memory after 10 files vs after 100.

    .venv/bin/python benchmarks/soak_separate.py --out DIR [--files 100] [--check-at 10] [--checkpoint CK]
        [--seconds 2 6] [--tolerance 0.10] [--keep-outputs] [-- EXTRA mstt separate OPTIONS]

Not a pytest suite. One ``mstt separate --model CK f000.wav ... f099.flac --out DIR/separated --quiet``
process (``python -m mstt`` of this checkout) separates every file; the script reads the
process's resident set from ``/proc/<pid>/status`` while it runs: ``VmHWM``, the kernel's
high-water mark of its RSS, when the CLI prints the line of file ``--check-at`` (10), and at the
end (``ru_maxrss`` of the exited process, the same counter). It passes when the peak after all
files is within ``--tolerance`` (10%) of the peak after 10 and every file was separated: a leak
per file (outputs, figures, MIDI objects, resampler state kept between files) would grow it
with the file count. ``VmRSS`` after each file is kept too, with its least-squares slope in MB
per file over the files after ``--check-at``.

The recordings are generated (seed 0): tones and noise of ``--seconds`` 2-6 s, at 16, 22.05,
44.1 or 48 kHz, mono or stereo, WAV or FLAC, in blocks of ``--check-at`` files that are alike
(the same rates, channels and formats and the same lengths but for 20 ms less per block, so
every file has a length of its own): the first block holds the heaviest files, so a later peak
above it is accumulation, not a bigger input. Without ``--checkpoint`` the model is a randomly
initialised ``cerberus_set4`` + ``quick.yaml`` (the demo's size; memory does not depend on the
weights).
``DIR/soak.json`` and ``DIR/soak.md`` hold the result; the separated files are deleted unless
``--keep-outputs``. Exit status 0 when it passes, 1 when it does not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mstt.fileio import write_text_atomic  # noqa: E402

RATES = (16000, 22050, 44100, 48000)
STEP_SECONDS = 0.02  # a file is this much shorter than its counterpart in the block before (1.25 frames at 16 kHz, hop 256)
# A line of ``mstt separate`` for a finished file: "PATH: [what was done; ]wrote OUT/NAME/ (files)".
WROTE = re.compile(r"(?:: |; )wrote \S")


def make_inputs(folder: Path, files: int, seconds: tuple[float, float], block: int, seed: int = 0) -> list[Path]:
    """``files`` recordings of chords and noise, in blocks of ``block`` files that are alike.

    Within a block lengths spread from ``seconds[0]`` to ``seconds[1]`` and rates, channel counts
    and formats vary; every block repeats that mix, each file :data:`STEP_SECONDS` shorter than
    its counterpart in the block before (more than a model frame, so that every file has a
    length of its own, as real files do, and the model sees new shapes). The first block thus
    holds the heaviest files, and the peak after it is what a later peak is compared with: a
    later peak above it is accumulation, not a bigger input.
    """
    blocks = -(-files // block)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        j, k = i % block, i // block
        rate = int(RATES[j % len(RATES)])
        channels = 1 + (j // len(RATES)) % 2
        ext = "flac" if j % 3 == 2 else "wav"
        length = seconds[0] + (seconds[1] - seconds[0]) * j / max(1, block - 1)
        n = int((length + (blocks - 1 - k) * STEP_SECONDS) * rate)
        t = np.arange(n) / rate
        mono = sum(0.15 * np.sin(2 * np.pi * f0 * t) for f0 in rng.choice([110, 147, 196, 262, 330, 392, 523], 3))
        mono = mono * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t)) + 0.02 * rng.standard_normal(n)
        audio = np.stack([mono, 0.8 * mono], axis=1) if channels > 1 else mono
        path = folder / f"f{i:03d}.{ext}"
        sf.write(str(path), audio.astype(np.float32), rate, subtype="PCM_16")
        paths.append(path)
    return paths


def default_checkpoint(path: Path) -> Path:
    """A randomly initialised demo-size model (cerberus_set4 + quick.yaml) in the checkpoint format."""
    from benchmarks.bench_separate import make_checkpoint

    return make_checkpoint(path, "quick")


def proc_status(pid: int) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` of a live process in MiB ({} once it is gone)."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return {}
    return out


def soak(checkpoint: Path, inputs: list[Path], out: Path, check_at: int, extra: list[str]) -> dict[str, Any]:
    """Run one ``mstt separate`` over ``inputs`` and follow its memory; the measurements as a dict."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "mstt", "separate", "--model", str(checkpoint), *map(str, inputs), "--out", str(out), "--quiet",
               *extra]
    stderr_path = out.parent / "separate.stderr.txt"
    samples: list[float] = []  # VmRSS every 0.1 s
    done = threading.Event()
    start = time.monotonic()
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)

        def sample() -> None:
            while not done.is_set():
                status = proc_status(proc.pid)
                if "VmRSS" in status:
                    samples.append(status["VmRSS"])
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        per_file: list[dict[str, float]] = []
        peak_at_check = None
        for line in proc.stdout:
            if not WROTE.search(line):
                continue
            status = proc_status(proc.pid)
            per_file.append({"file": len(per_file) + 1, "seconds": round(time.monotonic() - start, 2),
                             "rss_mb": round(status.get("VmRSS", float("nan")), 1),
                             "hwm_mb": round(status.get("VmHWM", float("nan")), 1)})
            if len(per_file) == check_at:
                peak_at_check = status.get("VmHWM")
        _, wait_status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(wait_status)
        done.set()
        sampler.join()
    errors = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    peak_final = usage.ru_maxrss / 1024  # kB on Linux: the same high-water mark as VmHWM, at exit
    later = [r for r in per_file if r["file"] > check_at and r["rss_mb"] == r["rss_mb"]]
    slope = float(np.polyfit([r["file"] for r in later], [r["rss_mb"] for r in later], 1)[0]) if len(later) > 1 else None
    return {
        "command": ["python", "-m", "mstt", "separate", "--model", str(checkpoint), f"<{len(inputs)} files>", "--out", str(out),
                    "--quiet", *extra],
        "exit_status": proc.returncode,
        "files": len(inputs),
        "files_separated": len(per_file),
        "stderr": errors[-20:],
        "wall_seconds": round(time.monotonic() - start, 1),
        "check_at": check_at,
        "peak_rss_mb_at_check": None if peak_at_check is None else round(peak_at_check, 1),
        "peak_rss_mb_final": round(peak_final, 1),
        "rss_samples_max_mb": round(max(samples), 1) if samples else None,
        "rss_slope_mb_per_file_after_check": None if slope is None else round(slope, 3),
        "per_file": per_file,
    }


def verdict(result: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """Growth of the peak from the check to the end, and whether it passes."""
    at, final = result["peak_rss_mb_at_check"], result["peak_rss_mb_final"]
    growth = None if not at else final / at - 1
    complete = result["exit_status"] == 0 and result["files_separated"] == result["files"]
    return {"growth": None if growth is None else round(growth, 4), "tolerance": tolerance,
            "passed": bool(complete and growth is not None and growth <= tolerance), "complete": complete}


def markdown(result: dict[str, Any]) -> str:
    """soak.md: the verdict, the peaks, and RSS after every tenth file."""
    v, slope = result["verdict"], result["rss_slope_mb_per_file_after_check"]
    growth = "–" if v["growth"] is None else f"{100 * v['growth']:+.1f}%"
    lines = [
        "# Soak: mstt separate over many files in one call",
        "",
        f"Machine: {result['machine']}. Model: {result['model']}. Inputs: {result['files']} recordings of "
        f"{result['seconds'][0]:g}-{result['seconds'][1]:g} s (16/22.05/44.1/48 kHz, mono/stereo, WAV/FLAC).",
        "",
        f"**{'PASS' if v['passed'] else 'FAIL'}**: peak RSS {result['peak_rss_mb_final']:.0f} MB after "
        f"{result['files_separated']} files vs {result['peak_rss_mb_at_check'] or float('nan'):.0f} MB after "
        f"{result['check_at']} ({growth}; tolerance {100 * v['tolerance']:.0f}%); "
        f"{result['files_separated']} of {result['files']} files separated, exit status {result['exit_status']}, "
        f"{result['wall_seconds']:.0f} s.",
        "",
        f"RSS after each file, least-squares slope after file {result['check_at']}: "
        + ("–" if slope is None else f"{slope:+.3f} MB per file") + ".",
        "",
        "| files done | s | RSS MB | peak RSS MB |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for r in result["per_file"]:
        if r["file"] in (1, result["check_at"]) or r["file"] % 10 == 0 or r["file"] == len(result["per_file"]):
            lines.append(f"| {r['file']} | {r['seconds']:.1f} | {r['rss_mb']:.0f} | {r['hwm_mb']:.0f} |")
    if result["stderr"]:
        lines += ["", "stderr (last lines):", "", "```", *result["stderr"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for soak.json, soak.md, the inputs and outputs")
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--check-at", type=int, default=10, help="the file count the final peak is compared with (default 10)")
    parser.add_argument("--seconds", type=float, nargs=2, default=[2.0, 6.0], metavar=("MIN", "MAX"))
    parser.add_argument("--checkpoint", type=Path, help="a model to separate with (default: a random demo-size model)")
    parser.add_argument("--tolerance", type=float, default=0.10, help="allowed growth of the peak (default 0.10)")
    parser.add_argument("--keep-outputs", action="store_true", help="keep DIR/separated/")
    parser.add_argument("extra", nargs="*", help="after --: more mstt separate options, e.g. -- --threads 1")
    args = parser.parse_args(argv)
    if not 0 < args.check_at < args.files:
        parser.error("need 0 < --check-at < --files")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "inputs", ignore_errors=True)
    inputs = make_inputs(out / "inputs", args.files, tuple(args.seconds), args.check_at)
    checkpoint = args.checkpoint or default_checkpoint(out / "model.pt")
    separated = out / "separated"
    shutil.rmtree(separated, ignore_errors=True)
    print(f"separating {len(inputs)} files with {checkpoint} in one mstt separate process ...", flush=True)
    result = soak(checkpoint, inputs, separated, args.check_at, args.extra)
    result.update(
        machine=f"{platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        model=str(args.checkpoint) if args.checkpoint else "random cerberus_set4 + quick.yaml",
        seconds=list(args.seconds),
        date=time.strftime("%Y-%m-%d %H:%M"),
    )
    result["verdict"] = verdict(result, args.tolerance)
    write_text_atomic(out / "soak.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(out / "soak.md", markdown(result))
    if not args.keep_outputs:
        shutil.rmtree(separated, ignore_errors=True)
    print(markdown(result).split("\n\n")[2])
    print(f"wrote {out / 'soak.json'} and {out / 'soak.md'}")
    return 0 if result["verdict"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
