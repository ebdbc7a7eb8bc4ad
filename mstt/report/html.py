"""A self-contained HTML page (audio players, figures, metrics) and the figures it shows.

The page references only files inside its own folder (files given from elsewhere are copied
into ``media/``) and loads nothing from the network, so the folder can be opened from disk,
zipped, or put on a web server as it is. Used by ``mstt separate --html`` and beside report.md.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import numpy as np
import soundfile as sf
from matplotlib.figure import Figure

LOWEST_KEY = 21
DPI = 80
MAX_COLUMNS = 2000  # time columns of a figure: a 9-minute recording is drawn as cheaply as a short one
FLOOR_DB = -80.0

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}"
    "figure{margin:.6em 0}figcaption{font-weight:600;margin-bottom:.2em}audio{width:100%}"
    "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}"
)


def _inside(folder: Path, path: Path) -> str:
    """``path`` relative to ``folder`` as a URL; a file outside the folder is copied into ``media/`` first."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file to put in the report")
    try:
        rel = path.resolve().relative_to(folder.resolve())
    except ValueError:
        media = folder / "media"
        media.mkdir(exist_ok=True)
        target = media / path.name
        n = 1
        while target.exists() and not target.samefile(path):
            target = media / f"{path.stem}-{n}{path.suffix}"
            n += 1
        shutil.copyfile(path, target)
        rel = target.relative_to(folder)
    return quote(rel.as_posix())


def _table(rows: list[list[str]]) -> str:
    """Rows (header first) -> an HTML table; markdown ``**bold**`` cells become <b>."""
    def cell(text: str, tag: str) -> str:
        bold = text.startswith("**") and text.endswith("**")
        text = html.escape(text.strip("*"))
        return f"<{tag}>{f'<b>{text}</b>' if bold else text}</{tag}>"

    head = "<tr>" + "".join(cell(c, "th") for c in rows[0]) + "</tr>"
    body = "".join("<tr>" + "".join(cell(c, "td") for c in row) + "</tr>" for row in rows[1:])
    return f"<table>{head}{body}</table>"


def metrics_html(metrics: Mapping[str, Any]) -> list[str]:
    """The metrics.json dict -> HTML: its facts, then separation and transcription tables."""
    from mstt.report.write import separation_table, transcription_table

    parts = []
    facts = [(k, metrics[k]) for k in ("recipe", "checkpoint", "split", "n_examples") if metrics.get(k) is not None]
    if facts:
        parts.append("<p>" + "; ".join(f"{html.escape(k)}: <code>{html.escape(str(v))}</code>" for k, v in facts) + "</p>")
    if metrics.get("separation"):
        parts += ["<h3>Separation (dB)</h3>", _table(separation_table(metrics["separation"]))]
    if metrics.get("transcription"):
        parts += ["<h3>Transcription F1</h3>", _table(transcription_table(metrics["transcription"]))]
    return parts


def write_html_report(
    folder: str | Path,
    title: str,
    audio: Mapping[str, str | Path],
    images: Mapping[str, str | Path],
    metrics: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    filename: str = "report.html",
) -> Path:
    """Write ``folder/filename``: a metrics table, one player per audio file, one figure per image; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    page = [f"<h1>{html.escape(title)}</h1>"]
    if notes:
        page.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if metrics:
        page += ["<h2>Metrics</h2>", *metrics_html(metrics)]
    # preload=metadata: the page opens fast, and the player still shows the duration.
    sections = (
        ("Audio", audio, lambda src, name: f'<audio controls preload="metadata" src="{src}"></audio>'),
        ("Figures", images, lambda src, name: f'<img src="{src}" alt="{name}">'),
    )
    for heading, files, element in sections:
        if files:
            page.append(f"<h2>{heading}</h2>")
            for name, path in files.items():
                label = html.escape(name)
                page.append(f"<figure><figcaption>{label}</figcaption>{element(_inside(folder, Path(path)), label)}</figure>")
    # An empty data: icon stops the browser from asking the server for /favicon.ico.
    head = (f"<meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<link rel='icon' href='data:,'><title>{html.escape(title)}</title><style>{_STYLE}</style>")
    out = folder / filename
    out.write_text(f"<!doctype html>\n<html lang='en'><head>{head}</head><body>\n" + "\n".join(page) + "\n</body></html>\n")
    return out


def _pool(x: np.ndarray, columns: int) -> np.ndarray:
    """Max-pool the last axis down to at most ``columns`` (short notes stay visible)."""
    n = x.shape[-1]
    if n <= columns:
        return x
    step = -(-n // columns)
    pad = step * (-(-n // step)) - n
    x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    return x.reshape(*x.shape[:-1], -1, step).max(-1)


def pianoroll_figure(
    rolls: Mapping[str, np.ndarray],
    frame_rate: float,
    path: str | Path,
    references: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Roll probabilities ``{source: (88, frames)}`` -> one panel per source (beside its reference when given)."""
    names = list(rolls)
    cols = 2 if references else 1
    fig = Figure(figsize=(11, 1.8 * len(names) + 0.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(names), cols, squeeze=False)
    for j, name in enumerate(names):
        panels = [("estimated", rolls[name])] + ([("reference", references[name])] if references else [])
        for c, (label, roll) in enumerate(panels):
            seconds = roll.shape[-1] / frame_rate
            ax = axes[j, c]
            ax.imshow(_pool(np.asarray(roll, np.float32), MAX_COLUMNS), origin="lower", aspect="auto", cmap="gray_r",
                      vmin=0, vmax=1, interpolation="nearest", extent=(0, seconds, LOWEST_KEY - 0.5, LOWEST_KEY + 87.5))
            ax.set_title(f"{name} ({label})" if references else name, fontsize="small")
            ax.set_ylabel("MIDI")
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
        db = np.maximum(20 * np.log10(np.maximum(spectra, 1e-10) / top), FLOOR_DB)
        image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=FLOOR_DB, vmax=0,
                          extent=(0, seconds, 0, sr / 2000))
        ax.set_title(label, fontsize="small")
        ax.set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    fig.colorbar(image, ax=list(axes), label="dB", pad=0.01)
    fig.savefig(path)
    return Path(path)
