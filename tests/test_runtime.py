"""mstt/runtime.py: how many threads `mstt separate` takes beside other processes, and the memory settings of
``mstt separate`` over many files. Nothing here is timed: benchmarks/shared_cores.py and
benchmarks/soak_separate.py measure the effects."""

from __future__ import annotations

import sys

import pytest

from mstt.runtime import (
    ONEDNN_CACHE,
    bound_onednn_cache,
    busy_cores,
    release_memory,
    separation_threads,
)


@pytest.mark.parametrize("cores,busy,threads", [
    (2, None, 2),  # unknown: torch's default
    (2, 0.0, 2), (2, 0.4, 2),  # an idle machine, or a little background noise
    (2, 0.6, 1), (2, 1.0, 1), (2, 2.0, 1), (2, 3.5, 1),  # a training run holds one or both cores: one thread
    (8, 2.0, 6), (8, 7.9, 1), (1, 0.0, 1),
])
def test_separation_takes_the_cores_others_leave_free(cores, busy, threads):
    assert separation_threads(cores, busy) == threads


def _stat(path, user: int, idle: int) -> None:
    path.write_text(f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 {user} 0 0 {idle} 0 0 0 0 0 0\n")


def test_busy_cores_reads_the_share_of_time_not_idle(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    _stat(stat, 1000, 1000)
    reads = iter([(1000, 1000), (1150, 1050)])  # 150 busy of 200 jiffies between the reads: 75% of the cores

    def fake_sleep(_seconds: float) -> None:
        user, idle = next(reads)
        _stat(stat, user, idle)

    monkeypatch.setattr("mstt.runtime.time.sleep", fake_sleep)
    monkeypatch.setattr("mstt.runtime.os.cpu_count", lambda: 2)
    next(reads)  # the first read is the file as written above
    assert busy_cores(0.0, stat) == pytest.approx(1.5)


def test_busy_cores_is_none_where_proc_stat_is_missing_or_odd(tmp_path, monkeypatch):
    monkeypatch.setattr("mstt.runtime.time.sleep", lambda _s: None)
    assert busy_cores(0.0, tmp_path / "missing") is None
    odd = tmp_path / "odd"
    odd.write_text("intr 1 2 3\n")
    assert busy_cores(0.0, odd) is None
    still = tmp_path / "still"
    _stat(still, 5, 5)
    assert busy_cores(0.0, still) is None  # no time passed between the reads: nothing to say


def test_separate_takes_fewer_threads_on_a_busy_machine_and_says_so(tmp_path, capsys, monkeypatch):
    import soundfile as sf
    import torch

    import mstt.commands.separate as separate
    from mstt.cli import main
    from tests.test_inference import make_checkpoint, tones

    # torch's thread count is faked: raising it for real after conftest lowered it corrupts MKL (docs/design.md)
    calls: list[int] = []
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    ckpt = make_checkpoint(tmp_path / "model.pt")
    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 16000), 16000)

    def separate_with(busy: float, *extra: str) -> str:
        monkeypatch.setattr(separate, "busy_cores", lambda: busy)
        calls.clear()
        assert main(["separate", str(ckpt), str(song), "--out", str(tmp_path / f"out{busy}{extra}"), "--quiet", *extra]) == 0
        return capsys.readouterr().out

    assert "other processes keep 1.8 of 2 cores busy: separating with 1 thread(s)" in separate_with(1.8)
    assert calls == [1]
    assert "cores busy" not in separate_with(0.1) and calls == []  # idle: torch's default
    assert "cores busy" not in separate_with(1.8, "--threads", "2") and calls == [2]  # --threads wins


# ------------------------------------------------------------------ memory over many files


def test_the_onednn_cache_is_bounded_unless_the_user_set_it():
    env = {"PATH": "/bin"}
    assert bound_onednn_cache(env) == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": str(ONEDNN_CACHE)}
    assert env == {"PATH": "/bin", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64"}
    for key in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"):
        env = {key: "1024"}
        assert bound_onednn_cache(env) == {} and env == {key: "1024"}


def test_release_memory_trims_the_heap_with_glibc():
    import platform

    trimmed = release_memory()
    assert release_memory() == trimmed  # looked up once, callable any number of times
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert trimmed


def test_separate_bounds_the_cache_before_the_model_and_releases_memory_per_file(tmp_path, capsys, monkeypatch):
    import soundfile as sf

    import mstt.commands.separate as separate
    import mstt.inference
    from mstt.cli import main
    from tests.test_inference import make_checkpoint, tones

    calls: list[str] = []
    real_load = mstt.inference.load
    monkeypatch.setattr(separate, "bound_onednn_cache", lambda: calls.append("bound cache") or {})
    monkeypatch.setattr(separate, "release_memory", lambda: calls.append("release") or release_memory())
    monkeypatch.setattr(mstt.inference, "load", lambda *a, **k: calls.append("load model") or real_load(*a, **k))
    ckpt = make_checkpoint(tmp_path / "model.pt")
    songs = []
    for i, seconds in enumerate((1.0, 1.3)):
        songs.append(tmp_path / f"song{i}.wav")
        sf.write(songs[-1], tones(seconds, 16000), 16000)
    assert main(["separate", str(ckpt), *map(str, songs), "--out", str(tmp_path / "out"), "--quiet"]) == 0, capsys.readouterr().err
    assert calls == ["bound cache", "load model", "release", "release"]
