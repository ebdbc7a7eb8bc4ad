"""Training logs on a full disk or in an unwritable place: one line naming the CSV file, the previous log intact."""

from __future__ import annotations

import csv
import errno
from pathlib import Path

import pytest

import mstt.train.logs as logs
from mstt.errors import MsttError
from mstt.train import load_checkpoint
from mstt.train.logs import CsvLog, RunLogs
from tests.train.test_loop import run, tiny_config

COLUMNS = ["step", "time", "lr", "loss"]


class _FullDisk:
    """A text file whose writes fail as on a full disk (what a flush of buffered rows raises)."""

    def __init__(self, f) -> None:
        self.f = f

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def _full_disk(monkeypatch) -> None:
    """Appends to the logs fail from now on; reading them still works."""
    real = open

    def open_(path, mode="r", *args, **kwargs):
        f = real(path, mode, *args, **kwargs)
        return _FullDisk(f) if "a" in mode else f

    monkeypatch.setattr(logs, "open", open_, raising=False)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_full_disk_while_logging_is_one_line_naming_the_csv(tmp_path, monkeypatch):
    path = tmp_path / "logs" / "train.csv"
    log = CsvLog(path, COLUMNS, None)
    log.write({"step": 10, "time": 1.0, "lr": 0.1, "loss": 2.0})
    log.close()
    _full_disk(monkeypatch)
    log = CsvLog(path, COLUMNS, 10)  # resumed at step 10: the row is kept
    with pytest.raises(MsttError, match=rf"^no space left on device writing {path}; free space or choose another --out$"):
        log.write({"step": 20, "time": 2.0, "lr": 0.1, "loss": 1.0})
    log.close()
    assert [r["step"] for r in _rows(path)] == ["10"]


def test_a_full_disk_when_the_log_is_rewritten_on_resume_keeps_the_old_log(tmp_path, request):
    path = tmp_path / "logs" / "validation.csv"
    log = CsvLog(path, COLUMNS, None)
    for step in (10, 20):
        log.write({"step": step, "time": 1.0, "lr": 0.1, "loss": 2.0})
    log.close()
    before = path.read_bytes()
    request.getfixturevalue("full_disk_on_write_text")  # from here on the disk is full
    with pytest.raises(MsttError, match=rf"^no space left on device writing {path}; free space or choose another --out$"):
        CsvLog(path, COLUMNS, 10)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["validation.csv"]  # no temp file left


def test_a_log_folder_without_permission_is_one_line(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(logs, "open", denied, raising=False)
    with pytest.raises(MsttError, match=rf"^permission denied writing {tmp_path}/logs/train.csv; choose a writable --out$"):
        RunLogs(tmp_path, ["dc"], None)


def test_training_on_a_full_disk_ends_in_one_line_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    config = tiny_config("trainer.max_steps=5", "trainer.validate_every=5", "trainer.log_every=5")
    run(config, tmp_path)
    last = tmp_path / "checkpoints" / "last.pt"
    saved = last.read_bytes()
    _full_disk(monkeypatch)
    with pytest.raises(MsttError, match=r"^no space left on device writing .*/logs/train\.csv; free space or choose another --out$"):
        run(tiny_config("trainer.max_steps=10", "trainer.validate_every=5", "trainer.log_every=5"), tmp_path)
    assert last.read_bytes() == saved and load_checkpoint(last)["step"] == 5
    assert [r["step"] for r in _rows(tmp_path / "logs" / "train.csv")] == ["5"]
