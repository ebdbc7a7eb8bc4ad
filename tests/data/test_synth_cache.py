"""The synthetic-set cache: a killed render resumes, a second process waits, leftovers are removed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import mstt.runlock
from mstt.data.synth import cache as synth_cache
from mstt.data.synth import ensure_synthetic_set, generate, synthesize
from mstt.data.synth.leftovers import PARTIAL_KEEP_S, QUIET_S, lock_path, partial_path
from mstt.runlock import lock_file, release_lock_file

ROOT = Path(__file__).resolve().parents[2]
SET = dict(sources="bass,drums", tracks=4, seconds=1.0, seed=3, sample_rate=8000)


class Killed(Exception):
    """Stands for a kill in the middle of a render."""


def _ensure(**options) -> Path:
    return ensure_synthetic_set(SET["sources"], SET["tracks"], SET["seconds"], SET["seed"], SET["sample_rate"],
                                jobs=1, **options)


def _key() -> str:
    fonts = synth_cache.check_soundfonts(None)
    return synth_cache.cache_key(["bass", "drums"], SET["tracks"], SET["seconds"], SET["seed"],
                                 SET["sample_rate"], fonts, (0.8, 0.1, 0.1))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, bytes]:
    """Every file of the set rendered in one go, by path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MSTT_CACHE", str(tmp_path_factory.mktemp("whole")))
        return _files(_ensure())


def _count_tracks(monkeypatch, stop_at: int | None = None) -> list[int]:
    """Count make_track calls; at call ``stop_at`` leave a half-written track and raise Killed."""
    calls: list[int] = []
    real = generate.make_track

    def counting(job: tuple) -> float:
        calls.append(job[1])
        if len(calls) == stop_at:
            final, scratch = Path(job[0]), Path(job[7])
            torn = Path(tempfile.mkdtemp(prefix=f"{final.name}.", suffix=".tmp", dir=scratch))
            (torn / "stems").mkdir()
            (torn / "stems" / "S00.flac").write_bytes(b"fLaC\0\0")  # cut short mid-write
            raise Killed()
        return real(job)

    monkeypatch.setattr(generate, "make_track", counting)
    return calls


def test_an_interrupted_render_resumes_and_gives_the_same_files(uninterrupted, cache_dir, monkeypatch, capsys):
    key = _key()
    root = cache_dir / "synth"
    calls = _count_tracks(monkeypatch, stop_at=3)
    with pytest.raises(Killed):
        _ensure()
    partial = partial_path(root, key)
    assert len(list(partial.glob("*/Track?????"))) == 2 and list((partial / ".partial").iterdir())
    assert not (root / key).exists()
    # As if the process had been killed while holding the lock: its line is still in the lock file.
    dead = _dead_pid()
    lock_path(root, key).write_text(f"pid={dead} host=h started=2026-12-04_10:00:00 command=synthetic set render\n")
    capsys.readouterr()
    calls = _count_tracks(monkeypatch)
    path = _ensure()
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"resuming the render of synthetic set {key}: 2 of 4 tracks already done" in err
    assert f"PID {dead}" in err and "gone" in err
    assert sorted(calls) == [2, 3]  # only the tracks not done, the torn one among them
    assert _files(path) == uninterrupted  # byte for byte, the set marker and COMPLETE included
    assert sorted(p.name for p in root.iterdir()) == [key]  # no partial folder, no lock file left


HOLDER = textwrap.dedent(
    """
    import sys
    from mstt.data.synth import ensure_synthetic_set, generate
    real = generate.make_track
    calls = []
    def gated(job):
        calls.append(job)
        if len(calls) == 3:  # two tracks done: say so and wait for the test
            print("rendering", flush=True)
            sys.stdin.readline()
        return real(job)
    generate.make_track = gated
    print(ensure_synthetic_set("bass,drums", 4, 1.0, 3, 8000, jobs=1), flush=True)
    """
)


@pytest.fixture
def holder(cache_dir: Path):
    """Another process rendering the set, stopped after two of its four tracks until told to go on."""
    env = {**os.environ, "MSTT_CACHE": str(cache_dir)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "rendering"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_process_waits_for_the_render_and_uses_it(holder, uninterrupted, monkeypatch, capsys):
    said = []

    def say(line: str) -> None:  # the waiting line: now let the holder finish
        said.append(line)
        holder.stdin.write("go\n")
        holder.stdin.flush()

    monkeypatch.setattr(mstt.runlock, "say", say)
    monkeypatch.setattr(synth_cache, "synthesize", lambda *a, **k: pytest.fail("rendered the set twice"))
    path = _ensure()
    assert len(said) == 1 and f"waiting for PID {holder.pid} " in said[0] and _key() in said[0]
    assert holder.stdout.readline().strip() == str(path) and holder.wait() == 0
    assert _files(path) == uninterrupted


def test_a_killed_holders_render_is_taken_over(holder, uninterrupted, cache_dir, monkeypatch, capsys):
    holder.kill()
    holder.wait()
    calls = _count_tracks(monkeypatch)
    path = _ensure()
    err = capsys.readouterr().err
    assert f"2 of 4 tracks already done (left by PID {holder.pid} " in err and err.count("\n") == 1
    assert len(calls) == 2 and _files(path) == uninterrupted
    assert sorted(p.name for p in (cache_dir / "synth").iterdir()) == [_key()]


def _age(path: Path, seconds: float) -> None:
    """Make everything under ``path`` look untouched for ``seconds``."""
    then = time.time() - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (then, then), follow_symlinks=False)


def _litter(root: Path, name: str, size: int, age: float) -> Path:
    folder = root / name
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "blob").write_bytes(os.urandom(size))
    _age(folder, age)
    return folder


def test_leftovers_of_killed_renders_are_removed_or_kept(cache_dir, monkeypatch, capsys):
    root = cache_dir / "synth"
    other, busy = "0123456789abcdef", "fedcba9876543210"
    stale = _litter(root, f".{other}.k2j4_x9z.tmp", 300_000, QUIET_S + 60)
    aside = _litter(root, f".{other}.ab_c1234.stale", 1000, QUIET_S + 60)
    fresh = _litter(root, f".{other}.q7w8e9r0.tmp", 1000, 0)  # perhaps an earlier version still rendering
    old_partial = _litter(root, f".{other}.partial", 1000, PARTIAL_KEEP_S + 60)
    held = _litter(root, f".{busy}.zz99yy88.tmp", 1000, QUIET_S + 60)
    young_partial = _litter(root, f".{busy}.partial", 1000, 3600)  # resumable: kept
    user = _litter(root, "notes.tmp", 10, QUIET_S + 60)  # not a name of ours
    fd = lock_file(lock_path(root, busy))  # a live render of that key
    try:
        _ensure()
    finally:
        release_lock_file(lock_path(root, busy), fd)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "removed 3 folder(s) of killed synthetic-set renders" in err, err
    freed = re.search(r"freeing (\d+) kB", err)
    assert freed and 300_000 // 1024 <= int(freed.group(1)) < 400  # the blob, plus a few folders' blocks
    assert not stale.exists() and not aside.exists() and not old_partial.exists()
    assert fresh.exists() and held.exists() and young_partial.exists() and user.exists()
    assert not lock_path(root, other).exists()


def test_an_earlier_versions_folder_of_the_same_set_is_resumed(uninterrupted, cache_dir, monkeypatch, capsys):
    key = _key()
    old = cache_dir / "synth" / f".{key}.x1y2z3w4.tmp"
    synthesize(old, "bass,drums", 4, 1.0, 3, 8000, jobs=1, progress=False)
    victim = next(old.glob("train/Track?????"))
    for p in sorted(victim.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    victim.rmdir()
    _age(old, QUIET_S + 60)
    capsys.readouterr()
    calls = _count_tracks(monkeypatch)
    path = _ensure()
    err = capsys.readouterr().err
    assert f"3 of 4 tracks already done (from {old.name}, an earlier version's folder)" in err
    assert err.count("\n") == 1 and calls == [int(victim.name[5:]) - 1]
    assert _files(path) == uninterrupted and not old.exists()


def test_a_track_another_writer_finished_first_is_kept(tmp_path):
    from mstt.data.synth.layout import _rename_into_place

    final, ours = tmp_path / "Track00001", tmp_path / "Track00001.x.tmp"
    for folder in (final, ours):
        folder.mkdir()
        (folder / "mix.flac").write_text(folder.name)
    _rename_into_place(ours, final)  # a worker of a killed render finished the same track first
    assert (final / "mix.flac").read_text() == "Track00001" and not ours.exists()


def test_importing_mstt_under_ci_prints_nothing_on_stdout():
    """pyfluidsynth prints where it found its library when $CI is set; mstt keeps that off stdout."""
    env = {**os.environ, "CI": "true"}
    code = "import mstt.data.synth, pretty_midi"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout == ""
