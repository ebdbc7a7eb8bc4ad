"""Report figures (matplotlib's object API with the Agg canvas; pyplot's global state is never touched)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mstt.data.classes import is_instrument
from mstt.evaluate.core import ReportExample

LOWEST_KEY = 21
FLOOR_DB = -80.0  # spectrogram colour range below the loudest bin
DPI = 80  # keeps noisy mask images under a megabyte


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


def _db(magnitude: np.ndarray) -> np.ndarray:
    """Magnitude -> dB relative to its loudest bin, floored at :data:`FLOOR_DB`."""
    db = 20 * np.log10(np.maximum(magnitude, 1e-10))
    return np.maximum(db - db.max(), FLOOR_DB)


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
    """Per source, the estimated roll probabilities beside the reference roll; None without a roll."""
    if example.est_roll is None or example.ref_roll is None:
        return None
    frames = example.est_roll.shape[-1]
    seconds = frames * example.hop_length / example.sample_rate
    extent = (0.0, seconds, LOWEST_KEY - 0.5, LOWEST_KEY + 87.5)
    shown = [(j, s) for j, s in enumerate(example.sources) if is_instrument(s)]  # OTHER is not transcribed
    fig = Figure(figsize=(10, 2.2 * len(shown)), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(shown), 2, squeeze=False)
    for row, (j, source) in enumerate(shown):
        for col, (label, roll) in enumerate((("estimated", example.est_roll), ("reference", example.ref_roll))):
            ax = axes[row, col]
            ax.imshow(roll[j], origin="lower", aspect="auto", extent=extent, cmap="gray_r", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_title(f"{source}: {label} roll", fontsize="small")
            ax.set_ylabel("MIDI")
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    fig.savefig(path)
    return path
