"""report.md (readable on GitHub) and report.html (the same, with audio players) for a run folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from mstt.fileio import write_text_atomic
from mstt.report.figures import learning_curves, masks_figure, read_history, rolls_figure
from mstt.report.html import write_html_report
from mstt.report.tables import markdown_table, separation_table, transcription_table

if TYPE_CHECKING:
    from mstt.evaluate.core import ReportExample


@dataclass
class _Section:
    """One example's files, relative to the run folder."""

    title: str
    images: list[str] = field(default_factory=list)
    audio: list[tuple[str, str]] = field(default_factory=list)  # (label, path)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit WAV, scaled down only when it would clip."""
    peak = float(np.abs(audio).max(initial=0.0))
    sf.write(path, audio / peak * 0.99 if peak > 0.99 else audio, sample_rate, subtype="PCM_16")


def _example_files(run_dir: Path, images: Path, index: int, example: ReportExample) -> _Section:
    """Write one example's figures and audio; return their paths relative to ``run_dir``."""
    stem = f"example{index}"
    section = _Section(f"Example {index}: {example.track} from {example.start:g} s")
    for figure, suffix in ((masks_figure, "masks"), (rolls_figure, "rolls")):
        written = figure(example, images / f"{stem}_{suffix}.png")
        if written is not None:
            section.images.append(written.relative_to(run_dir).as_posix())
    clips = [("mixture", example.mixture)]
    for j, source in enumerate(example.sources):
        if example.estimates is not None:
            clips.append((f"{source} estimate", example.estimates[j]))
        clips.append((f"{source} reference", example.references[j]))
    for label, audio in clips:
        path = images / f"{stem}_{label.replace(' ', '_')}.wav"
        _write_wav(path, audio, example.sample_rate)
        section.audio.append((label, path.relative_to(run_dir).as_posix()))
    return section


def _curve_logs(history_csvs: Sequence[Path] | Mapping[str, Path]) -> dict[str, Path]:
    """Log label -> CSV path; a plain list is labelled by file stem (train, validation)."""
    if isinstance(history_csvs, Mapping):
        return {str(k): Path(v) for k, v in history_csvs.items()}
    return {Path(p).stem: Path(p) for p in history_csvs}


def _markdown(
    title: str, metrics: dict[str, Any], notes: Sequence[str], curves: str | None, sections: Sequence[_Section]
) -> str:
    """report.md's text: title, facts, tables, notes, skipped tracks, curves and examples."""
    facts = f"{metrics.get('n_examples', 0)} examples; checkpoint `{metrics.get('checkpoint') or '-'}`"
    tables: list[tuple[str, list[list[str]]]] = []
    if "separation" in metrics:
        heading = "Separation (mean over examples; mean row: mean over the instrument sources, other excluded)"
        tables.append((heading, separation_table(metrics["separation"])))
    if "transcription" in metrics:
        tables.append(("Transcription F1 (mir_eval; drums have no offsets)", transcription_table(metrics["transcription"])))
    md = [f"# {title}", "", facts, ""]
    for heading, rows in tables:
        md += [f"## {heading}", "", *markdown_table(rows), ""]
    if notes:
        md += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    skipped = metrics.get("skipped") or []
    if skipped:  # an evaluation of part of the split must say so where its numbers are read
        md += [f"## Skipped tracks ({len(skipped)}, not evaluated)", "", *[f"- `{s['path']}`: {s['reason']}" for s in skipped], ""]
    if curves is not None:
        md += ["## Learning curves", "", f"![learning curves]({curves})", ""]
    if sections:
        md += ["## Examples", ""]
    for section in sections:
        md += [f"### {section.title}", ""]
        md += [f"![{Path(p).stem}]({p})" for p in section.images] + [""]
        md += ["Audio: " + " · ".join(f"[{label}]({p})" for label, p in section.audio), ""]
    return "\n".join(md)


def write_report(
    run_dir: str | Path,
    metrics: dict[str, Any],
    history_csvs: Sequence[Path] | Mapping[str, Path],
    examples: Sequence[ReportExample],
    notes: Sequence[str] = (),
) -> Path:
    """Write ``run_dir/report.md`` and ``run_dir/report.html``, images and audio in ``run_dir/report/``; returns report.md."""
    run_dir = Path(run_dir)
    images = run_dir / "report"
    images.mkdir(parents=True, exist_ok=True)
    histories = {name: read_history(path) for name, path in _curve_logs(history_csvs).items()}
    curves = learning_curves(histories, images / "learning_curves.png")
    sections = [_example_files(run_dir, images, i + 1, ex) for i, ex in enumerate(examples)]
    title = f"{metrics.get('recipe') or run_dir.name}: evaluation on {metrics.get('split', '?')}"
    text = _markdown(title, metrics, notes, curves.relative_to(run_dir).as_posix() if curves else None, sections)
    path = write_text_atomic(run_dir / "report.md", text)  # a full disk keeps the previous report

    # The same content with audio players, through the one HTML writer (also used by `mstt separate`).
    audio = {f"{section.title}: {label}": run_dir / p for section in sections for label, p in section.audio}
    figures = {"learning curves": curves} if curves is not None else {}
    figures.update({f"{section.title}: {Path(p).stem}": run_dir / p for section in sections for p in section.images})
    write_html_report(run_dir, title, audio, figures, metrics=metrics, notes=notes)
    return path
