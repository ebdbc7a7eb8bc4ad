"""Run reports: a metrics table per instrument, learning curves and a few examples' figures and audio."""

from mstt.report.plots import learning_curves, masks_figure, read_history, rolls_figure
from mstt.report.write import separation_table, transcription_table, write_report

__all__ = [
    "learning_curves",
    "masks_figure",
    "read_history",
    "rolls_figure",
    "separation_table",
    "transcription_table",
    "write_report",
]
