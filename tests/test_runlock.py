"""One process per run folder: a second one is refused naming the first; a dead holder's lock is taken over."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mstt.experiment
from mstt.cli import main
from mstt.errors import MsttError
from mstt.runlock import LOCK_NAME, folder_lock

ROOT = Path(__file__).resolve().parents[1]
RECIPE = str(ROOT / "recipes" / "cerberus_set1.yaml")

HOLDER = textwrap.dedent(
    """
    import sys, time
    from mstt.runlock import folder_lock
    with folder_lock(sys.argv[1], "mstt run"):
        print("locked", flush=True)
        time.sleep(60)
    """
)


@pytest.fixture
def holder(tmp_path: Path):
    """A live process holding ``tmp_path/run``'s lock: (folder, process)."""
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield folder, proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_process_is_refused_naming_the_first(holder, capsys, monkeypatch):
    folder, proc = holder
    (folder / "metrics.json").write_text("{}")
    with pytest.raises(MsttError) as caught:
        with folder_lock(folder, "mstt run"):
            pytest.fail("the lock was taken twice")
    message = str(caught.value)
    assert f"PID {proc.pid}" in message and "host" in message and "since" in message and "--out" in message
    assert "\n" not in message
    # The CLI: one line, exit 2, before any work (reading the data is the first work a run does).
    monkeypatch.setattr(mstt.experiment, "build_adapter", lambda *a, **k: pytest.fail("worked on a locked folder"))
    assert main(["run", RECIPE, "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"PID {proc.pid}" in err
    assert proc.poll() is None and (folder / "metrics.json").read_text() == "{}"  # the first is untouched


def test_a_killed_holders_lock_is_taken_over_with_one_line(holder, capsys):
    folder, proc = holder
    proc.kill()
    proc.wait()
    assert f"pid={proc.pid}" in (folder / LOCK_NAME).read_text()  # SIGKILL left its line behind
    with folder_lock(folder, "mstt run"):
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"PID {proc.pid}" in err and "taking it over" in err
        assert f"pid={proc.pid}" not in (folder / LOCK_NAME).read_text()
    assert (folder / LOCK_NAME).read_text() == ""  # a clean exit leaves nothing to take over
    with folder_lock(folder, "mstt run"):
        assert capsys.readouterr().err == ""


def test_the_same_folder_is_refused_in_process_too(tmp_path):
    with folder_lock(tmp_path, "mstt bench"):
        with pytest.raises(MsttError, match="mstt bench"):
            with folder_lock(tmp_path, "mstt bench"):
                pass
    with folder_lock(tmp_path, "mstt bench"):  # released when the block ends
        pass


def test_a_filesystem_without_locks_warns_and_goes_on(tmp_path, monkeypatch, capsys):
    import errno
    import fcntl

    def unsupported(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", unsupported)
    with folder_lock(tmp_path, "mstt run"):
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot lock it (No locks available)" in err


def test_a_waiting_lock_waits_and_relocks_the_file_its_holder_removed(tmp_path, monkeypatch):
    import threading

    from mstt import runlock

    path = tmp_path / ".set.lock"
    waiting, inside = threading.Event(), []
    monkeypatch.setattr(runlock, "say", lambda line: (inside.append(line), waiting.set()))

    def second() -> None:
        with runlock.waiting_lock(path, "render", lambda who: f"waiting for {who}") as gone:
            inside.append(gone)
            inside.append(runlock.lock_file(path))  # None: it holds the file at the path, not the removed one

    with runlock.waiting_lock(path, "render", lambda who: f"waiting for {who}") as gone:
        assert gone == "" and "command=render" in path.read_text()
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(60)
    thread.join(60)
    assert not thread.is_alive() and not path.exists()
    assert inside[0].startswith(f"waiting for PID {os.getpid()} on host") and inside[1:] == ["", None]
