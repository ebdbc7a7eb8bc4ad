"""Atomic writes and the clean-up of temp files that a killed write leaves behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mstt.fileio import pid_alive, remove_stale_tmp
from mstt.runlock import folder_lock


def dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path, capsys):
    dead = dead_pid()
    assert not pid_alive(dead) and pid_alive(1)
    (tmp_path / "checkpoints").mkdir()
    stale = [tmp_path / "checkpoints" / f".last.pt.{dead}.tmp", tmp_path / f".metrics.json.{dead}.tmp"]
    live = tmp_path / "checkpoints" / ".best.pt.1.tmp"  # PID 1 is always alive
    keep = [live, tmp_path / "checkpoints" / "last.pt", tmp_path / "notes.tmp", tmp_path / f".x.{dead}.tmp.bak"]
    for path in stale + keep:
        path.write_bytes(b"x" * 10)
    partial = tmp_path / f".song.partial-{dead}"
    partial.mkdir()
    (partial / "piano.wav").write_bytes(b"x")
    assert sorted(remove_stale_tmp(tmp_path, depth=1)) == sorted(stale + [partial])
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale) and not partial.exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "removed 3 temp file(s) of killed writes" in err


def test_depth_bounds_the_search(tmp_path):
    dead = dead_pid()
    deep = tmp_path / "a" / "b" / f".c.{dead}.tmp"
    deep.parent.mkdir(parents=True)
    deep.write_text("x")
    assert remove_stale_tmp(tmp_path, depth=1) == [] and deep.exists()
    assert remove_stale_tmp(tmp_path, depth=2) == [deep]


def test_the_next_run_on_a_folder_removes_a_killed_checkpoint_write(tmp_path):
    stale = tmp_path / "checkpoints" / f".last.pt.{dead_pid()}.tmp"
    stale.parent.mkdir()
    stale.write_bytes(b"\0" * 100)
    with folder_lock(tmp_path, "mstt run"):
        assert not stale.exists()
