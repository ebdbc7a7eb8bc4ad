"""Training logs: CSV files (always), TensorBoard (when installed) and a tqdm progress bar.

``out/logs/train.csv``: step, time, lr, loss, loss/<head>... (means over ``log_every`` steps).
``out/logs/validation.csv``: step, time, lr, loss, loss/<head>... (means over the validation set).
``time`` is training seconds, summed over resumes.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mstt.errors import MsttError
from mstt.fileio import write_error, write_text_atomic


def _summary_writer(directory: Path) -> Any:
    """A TensorBoard SummaryWriter, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # ImportError, or a broken tensorboard install: CSV logs still work
        return None
    return SummaryWriter(log_dir=str(directory))


class CsvLog:
    """One CSV file with a fixed header; rows after ``resume_step`` are dropped on reopen.

    A failed write (full disk, no permission) raises the one-line MsttError of
    :func:`mstt.fileio.write_error` naming the file; the rewrite on reopen is atomic, so it
    leaves the previous log intact.
    """

    def __init__(self, path: Path, columns: list[str], resume_step: int | None) -> None:
        self.path = path
        self.columns = columns
        kept: list[dict[str, str]] = []
        if resume_step is not None and path.is_file():
            # Rows written after the checkpoint we resume from describe steps that will be
            # trained again; keep the log consistent with the checkpoint.
            with open(path, newline="") as f:
                kept = [row for row in csv.DictReader(f) if _step_of(row) <= resume_step]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in kept:
            writer.writerow({c: row.get(c, "") for c in columns})
        write_text_atomic(path, text.getvalue())
        try:
            self.file = open(path, "a", newline="")
        except OSError as exc:
            raise write_error(path, exc) from None
        self.writer = csv.DictWriter(self.file, fieldnames=columns, extrasaction="ignore")

    def write(self, row: dict[str, Any]) -> None:
        """Append one row and flush, so a killed run keeps its log."""
        try:
            self.writer.writerow({c: _fmt(row.get(c, "")) for c in self.columns})
            self.file.flush()
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def close(self) -> None:
        """Close the file."""
        try:
            self.file.close()
        except OSError as exc:
            raise write_error(self.path, exc) from None


def _step_of(row: dict[str, str]) -> int:
    try:
        return int(row.get("step") or 0)
    except ValueError:
        return 0


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


class RunLogs:
    """Everything rank 0 writes while training, except checkpoints."""

    def __init__(self, out: Path, heads: list[str], resume_step: int | None, enabled: bool = True) -> None:
        self.enabled = enabled
        metrics = ["loss"] + [f"loss/{h}" for h in heads]
        self.train = self.validation = None
        self.tb = None
        if not enabled:
            return
        logs = out / "logs"
        self.train = CsvLog(logs / "train.csv", ["step", "time", "lr"] + metrics, resume_step)
        self.validation = CsvLog(logs / "validation.csv", ["step", "time", "lr"] + metrics, resume_step)
        self.tb = _summary_writer(logs / "tb")

    def log_train(self, row: dict[str, Any]) -> None:
        """One training row (window means)."""
        if not self.enabled:
            return
        self.train.write(row)
        self._scalars("train", row)

    def log_validation(self, row: dict[str, Any]) -> None:
        """One validation row."""
        if not self.enabled:
            return
        self.validation.write(row)
        self._scalars("validation", row)

    def _scalars(self, group: str, row: dict[str, Any]) -> None:
        if self.tb is None:
            return
        for key, value in row.items():
            if key not in ("step", "time") and isinstance(value, (int, float)):
                self.tb.add_scalar(f"{group}/{key}", value, row["step"])
        self.tb.flush()

    def close(self) -> None:
        """Close every file; the first failed write (its one-line MsttError) is raised after all are closed."""
        failed: MsttError | None = None
        for log in (self.train, self.validation):
            if log is not None:
                try:
                    log.close()
                except MsttError as exc:
                    failed = failed or exc
        if self.tb is not None:
            self.tb.close()
        if failed is not None:
            raise failed


class Progress:
    """A tqdm bar over steps whose postfix shows the loss of every head."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)

    def update(self, losses: dict[str, float], lr: float) -> None:
        """Advance one step and show its losses."""
        if self.bar.disable:
            return
        shown = {k.replace("loss/", ""): f"{v:.4g}" for k, v in losses.items()}
        shown["lr"] = f"{lr:.2g}"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def write(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if not self.bar.disable:
            self.bar.write(text)

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()
