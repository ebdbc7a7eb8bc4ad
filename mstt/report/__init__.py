"""Run reports: a metrics table per instrument, learning curves and a few examples' figures and audio.

``tables`` turns metrics.json blocks into rows, ``figures`` draws every figure, ``html`` writes a
self-contained page, and ``write`` puts report.md and report.html of a run folder together.
"""

from mstt.report.figures import learning_curves, masks_figure, read_history, rolls_figure
from mstt.report.tables import separation_table, transcription_table
from mstt.report.write import write_report

__all__ = [
    "learning_curves",
    "masks_figure",
    "read_history",
    "rolls_figure",
    "separation_table",
    "transcription_table",
    "write_report",
]
