"""The metrics.json blocks as table rows (header first): one source a row, the mean last.

report.md prints them as markdown (:func:`markdown_table`), report.html as HTML tables.
"""

from __future__ import annotations

from typing import Any

# metrics.json key -> column title, in the order docs/design.md gives the keys.
SEPARATION_COLUMNS = (("si_sdr", "SI-SDR"), ("si_sdri", "SI-SDRi"), ("sdr", "SDR"), ("sir", "SIR"), ("sar", "SAR"))
TRANSCRIPTION_COLUMNS = (("frame", "Frame F1"), ("onset", "Onset F1"), ("onset_offset", "On/off F1"))


def _number(value: Any, digits: int) -> str:
    """A table cell: a rounded number, or a dash for a missing or unscored value."""
    return "–" if value is None else f"{value:.{digits}f}"


def separation_table(block: dict[str, dict[str, float | None]]) -> list[list[str]]:
    """Header row then one row per source and the mean: SI-SDR, SI-SDRi, SDR [, SIR, SAR] in dB."""
    present = [(k, t) for k, t in SEPARATION_COLUMNS if any(k in row for row in block.values())]
    extra = sorted({k for row in block.values() for k in row} - {k for k, _ in SEPARATION_COLUMNS})
    header = ["source"] + [f"{t} (dB)" for _, t in present] + extra
    rows = [header]
    for name, row in block.items():
        label = f"**{name}**" if name == "mean" else name
        rows.append([label] + [_number(row.get(k), 2) for k, _ in present] + [_number(row.get(k), 2) for k in extra])
    return rows


def transcription_table(block: dict[str, dict[str, dict[str, float | None]]]) -> list[list[str]]:
    """Header row then one row per source and the mean: frame, onset and onset-offset F1."""
    rows = [["source"] + [t for _, t in TRANSCRIPTION_COLUMNS]]
    for name, levels in block.items():
        label = f"**{name}**" if name == "mean" else name
        rows.append([label] + [_number(levels.get(k, {}).get("f1"), 3) for k, _ in TRANSCRIPTION_COLUMNS])
    return rows


def markdown_table(rows: list[list[str]]) -> list[str]:
    """GitHub-flavoured table lines; numeric columns right-aligned."""
    lines = ["| " + " | ".join(rows[0]) + " |", "| --- |" + " ---: |" * (len(rows[0]) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return lines
