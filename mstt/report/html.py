"""A self-contained HTML page: metrics tables, audio players and figures.

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

# The figures a page shows are drawn in mstt.report.figures; `mstt separate` imports these two from here.
from mstt.report.figures import pianoroll_figure, spectrogram_figure
from mstt.report.tables import separation_table, transcription_table

__all__ = ["metrics_html", "pianoroll_figure", "spectrogram_figure", "write_html_report"]

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
