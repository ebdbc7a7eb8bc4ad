"""Every figure mstt draws: learning curves, masks and rolls of report examples, and the piano
roll and spectrograms of ``mstt separate --html``.

matplotlib's object API with the Agg canvas; pyplot's global state is never touched. Figures
are drawn at :data:`DPI` and at most :data:`MAX_COLUMNS` time columns, so a long recording is
as cheap to draw as a short one.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
import soundfile as sf
from matplotlib.figure import Figure

from mstt.data.classes import is_instrument
from mstt.features.rolls import LOWEST_KEY, N_KEYS

if TYPE_CHECKING:
    from mstt.evaluate.core import ReportExample

DPI = 80  # keeps noisy mask images under a megabyte
MAX_COLUMNS = 2000  # time columns of a figure: a 9-minute recording is drawn as cheaply as a short one
FLOOR_DB = -80.0  # spectrogram colour range below the loudest bin
KEY_RANGE = (LOWEST_KEY - 0.5, LOWEST_KEY + N_KEYS - 0.5)  # a roll's vertical extent, one MIDI pitch a row


def read_history(path: Path) -> dict[str, np.ndarray]:
    """A training log CSV -> ``{column: float array}``; empty when the file is missing or has no rows."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    columns: dict[str, np.ndarray] = {}
    for key in rows[0]:
        values = []
        for row in rows:
            try:
                values.append(float(row.get(key) or "nan"))
            except ValueError:
                values.append(math.nan)
        columns[key] = np.asarray(values)
    return columns


def learning_curves(histories: dict[str, dict[str, np.ndarray]], path: Path) -> Path | None:
    """One panel per loss column (total and each head), one line per log; None when no log has rows."""
    histories = {name: h for name, h in histories.items() if "step" in h}
    columns: list[str] = []
    for history in histories.values():
        columns += [c for c in history if c.startswith("loss") and c not in columns]
    if not columns:
        return None
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(columns):]:
        ax.set_visible(False)
    for ax, column in zip(axes, columns):
        positive = True
        for name, history in histories.items():
            if column not in history:
                continue
            y = history[column]
            ok = np.isfinite(y)
            positive &= bool(np.all(y[ok] > 0))
            ax.plot(history["step"][ok], y[ok], marker="o" if ok.sum() < 20 else None, ms=3, label=name)
        if positive:
            # Losses span orders of magnitude early on; a log axis keeps the late steps readable.
            ax.set_yscale("log")
        ax.set_title(column)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(path)
    return path


def _db(magnitude: np.ndarray, top: float | None = None) -> np.ndarray:
    """Magnitude -> dB below ``top`` (default: its loudest bin), floored at :data:`FLOOR_DB`."""
    db = 20 * np.log10(np.maximum(magnitude, 1e-10))
    reference = db.max() if top is None else 20 * np.log10(max(top, 1e-10))
    return np.maximum(db - reference, FLOOR_DB)


def _pool(x: np.ndarray, columns: int = MAX_COLUMNS) -> np.ndarray:
    """Max-pool the last axis down to at most ``columns`` (short notes stay visible)."""
    n = x.shape[-1]
    if n <= columns:
        return x
    step = -(-n // columns)
    pad = step * (-(-n // step)) - n
    x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    return x.reshape(*x.shape[:-1], -1, step).max(-1)


def _draw_roll(ax, roll: np.ndarray, seconds: float, title: str) -> None:
    """One roll panel: probabilities ``(88, frames)`` in grey, MIDI pitch upwards."""
    ax.imshow(_pool(np.asarray(roll, np.float32)), origin="lower", aspect="auto", cmap="gray_r", vmin=0, vmax=1,
              interpolation="nearest", extent=(0.0, seconds, *KEY_RANGE))
    ax.set_title(title, fontsize="small")
    ax.set_ylabel("MIDI")


def masks_figure(example: ReportExample, path: Path) -> Path:
    """Mixture spectrogram on top; below it, per source, the estimated and the reference mask."""
    seconds = len(example.mixture) / example.sample_rate
    extent = (0.0, seconds, 0.0, example.sample_rate / 2000)
    has_est = example.est_masks is not None
    rows = 1 + (len(example.sources) if has_est else 0)
    fig = Figure(figsize=(10, 2.2 * rows), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(rows, 2)
    ax = fig.add_subplot(grid[0, :])
    image = ax.imshow(_db(example.magnitude), origin="lower", aspect="auto", extent=extent, cmap="magma")
    ax.set_title(f"mixture, {example.track} from {example.start:g} s (dB)")
    ax.set_ylabel("kHz")
    fig.colorbar(image, ax=ax, pad=0.01)
    if has_est:
        for j, source in enumerate(example.sources):
            for col, (label, masks) in enumerate((("estimated", example.est_masks), ("reference", example.ref_masks))):
                ax = fig.add_subplot(grid[1 + j, col])
                ax.imshow(masks[j], origin="lower", aspect="auto", extent=extent, cmap="viridis", vmin=0, vmax=1)
                ax.set_title(f"{source}: {label} mask", fontsize="small")
                ax.set_ylabel("kHz")
        ax.set_xlabel("seconds")
    fig.savefig(path)
    return path


def rolls_figure(example: ReportExample, path: Path) -> Path | None:
    """Per transcribed source, the estimated roll probabilities beside the reference roll; None without a roll."""
    if example.est_roll is None or example.ref_roll is None:
        return None
    seconds = example.est_roll.shape[-1] * example.hop_length / example.sample_rate
    shown = [(j, s) for j, s in enumerate(example.sources) if is_instrument(s)]
    fig = Figure(figsize=(10, 2.2 * len(shown)), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(shown), 2, squeeze=False)
    for row, (j, source) in enumerate(shown):
        for col, (label, roll) in enumerate((("estimated", example.est_roll), ("reference", example.ref_roll))):
            _draw_roll(axes[row, col], roll[j], seconds, f"{source}: {label} roll")
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    fig.savefig(path)
    return path


def pianoroll_figure(
    rolls: Mapping[str, np.ndarray],
    frame_rate: float,
    path: str | Path,
    references: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Roll probabilities ``{source: (88, frames)}`` -> one panel per source (beside its reference when given)."""
    names = list(rolls)
    fig = Figure(figsize=(11, 1.8 * len(names) + 0.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(names), 2 if references else 1, squeeze=False)
    for j, name in enumerate(names):
        panels = [("estimated", rolls[name])] + ([("reference", references[name])] if references else [])
        for c, (label, roll) in enumerate(panels):
            _draw_roll(axes[j, c], roll, roll.shape[-1] / frame_rate, f"{name} ({label})" if references else name)
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    fig.savefig(path)
    return Path(path)


def _columns(path: Path, n_fft: int, columns: int) -> tuple[np.ndarray, int, float]:
    """Magnitude spectra ``(freq, cols)`` of windows spread over a sound file, read by seeking (flat memory)."""
    window = np.hanning(n_fft).astype(np.float32)
    with sf.SoundFile(str(path)) as f:
        n, sr = f.frames, f.samplerate
        starts = np.unique(np.linspace(0, max(0, n - n_fft), min(columns, max(1, n // (n_fft // 4)))).astype(np.int64))
        spectra = np.empty((n_fft // 2 + 1, len(starts)), np.float32)
        for i, start in enumerate(starts):
            f.seek(int(start))
            block = f.read(n_fft, dtype="float32", always_2d=True).mean(axis=1)
            block = np.pad(block, (0, n_fft - len(block)))
            spectra[:, i] = np.abs(np.fft.rfft(block * window))
    return spectra, sr, n / sr


def spectrogram_figure(signals: Mapping[str, str | Path], path: str | Path, n_fft: int = 2048) -> Path:
    """Sound files ``{label: path}`` -> one spectrogram panel each (dB below the loudest bin of all)."""
    data = {label: _columns(Path(p), n_fft, MAX_COLUMNS // 2) for label, p in signals.items()}
    top = max((float(s.max()) for s, _, _ in data.values()), default=1.0) or 1.0
    fig = Figure(figsize=(11, 1.8 * len(data) + 0.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(data), 1, squeeze=False)[:, 0]
    for ax, (label, (spectra, sr, seconds)) in zip(axes, data.items()):
        image = ax.imshow(_db(spectra, top), origin="lower", aspect="auto", cmap="magma", vmin=FLOOR_DB, vmax=0,
                          extent=(0, seconds, 0, sr / 2000))
        ax.set_title(label, fontsize="small")
        ax.set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    fig.colorbar(image, ax=list(axes), label="dB", pad=0.01)
    fig.savefig(path)
    return Path(path)
