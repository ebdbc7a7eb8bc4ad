"""trainer.precision: auto picks bf16 only where the hardware has it; a bad value is one line."""

from __future__ import annotations

import pytest
import torch
from test_loop import run, tiny_config

from mstt.errors import MsttError
from mstt.train import precision as P

CPU = torch.device("cpu")


@pytest.fixture
def cpu_flags(monkeypatch):
    """Pretend the CPU lists the given native-bf16 flags."""

    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(P, "cpu_bf16_flags", lambda: tuple(flags))

    return set_flags


def test_auto_uses_bf16_on_a_cpu_with_native_bf16(cpu_flags):
    cpu_flags("avx512_bf16")
    chosen = P.resolve_precision("auto", True, CPU)
    assert chosen.autocast and "avx512_bf16" in chosen.reason


def test_auto_falls_back_to_fp32_and_says_why(cpu_flags):
    cpu_flags()
    chosen = P.resolve_precision("auto", True, CPU)
    assert not chosen.autocast and "no native bfloat16" in chosen.reason


def test_fp32_and_the_older_amp_false_turn_autocast_off(cpu_flags):
    cpu_flags("amx_bf16")
    assert not P.resolve_precision("fp32", True, CPU).autocast
    assert not P.resolve_precision("auto", False, CPU).autocast


def test_bf16_on_a_cpu_without_it_names_the_key_and_what_the_machine_supports(cpu_flags):
    cpu_flags()
    with pytest.raises(MsttError, match=r"trainer.precision: bf16.*lacks avx512_bf16 and amx_bf16.*supports fp32"):
        P.resolve_precision("bf16", True, CPU)


def test_unknown_precision_is_refused(cpu_flags):
    with pytest.raises(MsttError, match="trainer.precision: 'fp16' is not a precision; use auto, bf16 or fp32"):
        P.resolve_precision("fp16", True, CPU)


def test_the_flags_come_from_proc_cpuinfo(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 avx512_bf16\n")
    real_path = P.Path
    monkeypatch.setattr(P, "Path", lambda p: fake if p == "/proc/cpuinfo" else real_path(p))
    P.cpu_bf16_flags.cache_clear()
    try:
        assert P.cpu_bf16_flags() == ("avx512_bf16", "amx_bf16")
    finally:
        P.cpu_bf16_flags.cache_clear()


def test_training_runs_under_cpu_autocast_when_bf16_is_chosen(tmp_path, cpu_flags, capsys):
    cpu_flags("avx512_bf16")
    config = tiny_config("trainer.precision=bf16", "trainer.max_steps=4", "trainer.validate_every=2")
    seen = []
    original = torch.nn.LSTM.forward

    def spy(self, *args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return original(self, *args, **kwargs)

    torch.nn.LSTM.forward = spy
    try:
        result = run(config, tmp_path)
    finally:
        torch.nn.LSTM.forward = original
    assert result.step == 4 and seen and all(seen)
    assert "precision: bf16 (trainer.precision=bf16)" in capsys.readouterr().out


def test_a_run_resumes_under_another_precision(tmp_path, cpu_flags):
    cpu_flags("avx512_bf16")
    run(tiny_config("trainer.precision=fp32", "trainer.max_steps=3"), tmp_path)
    result = run(tiny_config("trainer.precision=bf16", "trainer.max_steps=5"), tmp_path)
    assert result.step == 5

