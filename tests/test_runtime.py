"""mstt/runtime.py: the OpenMP wait-policy rule (the user's setting is kept, PASSIVE is set otherwise,
before torch loads OpenMP) and the memory settings of ``mstt separate`` over many files. Nothing here is
timed or measured: benchmarks/shared_cores.py and benchmarks/soak_separate.py measure the effects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mstt.runtime import (
    DEFAULTS,
    ONEDNN_CACHE,
    USER_KEYS,
    apply_openmp_defaults,
    bound_onednn_cache,
    release_memory,
)

ROOT = Path(__file__).resolve().parents[1]


def test_passive_is_set_when_the_user_chose_no_wait_policy():
    env = {"PATH": "/bin", "OMP_NUM_THREADS": "2"}
    assert apply_openmp_defaults(env, torch_loaded=False) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert env == {"PATH": "/bin", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    assert DEFAULTS == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("key,value", [("OMP_WAIT_POLICY", "ACTIVE"), ("OMP_WAIT_POLICY", "passive"), ("OMP_WAIT_POLICY", ""),
                                       ("GOMP_SPINCOUNT", "300000"), ("KMP_BLOCKTIME", "1")])
def test_a_wait_policy_the_user_set_is_kept(key, value):
    env = {key: value}
    assert apply_openmp_defaults(env, torch_loaded=False) == {}
    assert env == {key: value}
    assert key in USER_KEYS


def test_nothing_changes_once_torch_is_loaded(monkeypatch):
    env: dict[str, str] = {}
    assert apply_openmp_defaults(env, torch_loaded=True) == {}
    assert env == {}
    # In this process torch is loaded (conftest.py): the environment of a program that calls main() is left alone.
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    for key in USER_KEYS:
        monkeypatch.delenv(key, raising=False)
    assert apply_openmp_defaults() == {}
    assert "OMP_WAIT_POLICY" not in os.environ


def _cli_openmp(extra_env: dict[str, str]) -> tuple[str, str]:
    """Run the mstt entry point in a fresh process with OMP_DISPLAY_ENV: (its OMP_WAIT_POLICY, what libgomp read)."""
    env = {k: v for k, v in os.environ.items() if k not in USER_KEYS}
    env.update(extra_env, OMP_DISPLAY_ENV="VERBOSE", PYTHONPATH=str(ROOT))
    code = "import os, sys; from mstt.cli import main; main([]); print('policy=' + os.environ.get('OMP_WAIT_POLICY', '-'))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    policy = [line for line in proc.stdout.splitlines() if line.startswith("policy=")]
    assert policy, proc.stdout + proc.stderr
    return policy[0].removeprefix("policy="), proc.stderr


@pytest.mark.parametrize("extra,policy,libgomp", [
    ({}, "PASSIVE", ["OMP_WAIT_POLICY = 'PASSIVE'", "GOMP_SPINCOUNT = '0'"]),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE", ["OMP_WAIT_POLICY = 'ACTIVE'", "GOMP_SPINCOUNT = '30000000000'"]),
    ({"GOMP_SPINCOUNT": "300000"}, "-", ["GOMP_SPINCOUNT = '300000'"]),
])
def test_the_cli_sets_the_policy_before_torch_loads_openmp(extra, policy, libgomp):
    seen, display = _cli_openmp(extra)
    assert seen == policy
    if "GOMP_SPINCOUNT" not in display:
        pytest.skip("torch here does not run on GNU OpenMP (libgomp), whose settings this checks")
    for line in libgomp:  # what libgomp itself read when torch loaded it: the rule came first
        assert line in display, display


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
