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


def test_a_full_disk_keeps_the_previous_metrics_and_names_the_file(tmp_path, monkeypatch, request):
    import errno
    import json

    import pytest

    from mstt.errors import MsttError
    from mstt.evaluate import write_metrics

    path = write_metrics(tmp_path / "metrics.json", {"n_examples": 1})
    request.getfixturevalue("full_disk_on_write_text")  # from here on the disk is full
    with pytest.raises(MsttError, match=rf"^no space left on device writing {path}; free space or choose another --out$"):
        write_metrics(path, {"n_examples": 2})
    monkeypatch.setattr(Path, "write_text", lambda *a, **k: (_ for _ in ()).throw(PermissionError(errno.EACCES, "no")))
    with pytest.raises(MsttError, match=rf"^permission denied writing {path}; choose a writable --out$"):
        write_metrics(path, {"n_examples": 2})
    assert json.loads(path.read_text()) == {"n_examples": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_out_that_is_a_file_or_read_only_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    import os

    import pytest

    import mstt.experiment
    from mstt.cli import main
    from mstt.errors import MsttError
    from mstt.fileio import check_out_dir

    recipe = str(Path(__file__).resolve().parents[1] / "recipes" / "cerberus_set1.yaml")
    monkeypatch.setattr(mstt.experiment, "build_adapter", lambda *a, **k: pytest.fail("worked on a bad --out"))
    afile = tmp_path / "afile"
    afile.write_text("keep")
    for out in (afile, afile / "run"):
        assert main(["run", recipe, "--out", str(out)]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"--out {out}:" in line and "is a file" in line
    assert afile.read_text() == "keep"
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    with pytest.raises(MsttError, match=rf"^--out {tmp_path}/new/run: {tmp_path} is not writable; choose a writable --out$"):
        check_out_dir(tmp_path / "new" / "run")
    assert main(["bench", recipe, "--out", str(tmp_path / "bench")]) == 2
    assert f"{tmp_path} is not writable" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and not (tmp_path / "bench").exists()
