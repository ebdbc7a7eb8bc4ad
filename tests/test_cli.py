"""The command line: help, unknown input, and a reader that goes away."""

from __future__ import annotations

import io
import sys

from mstt.cli import main


def test_no_command_prints_help_and_returns_2(capsys):
    assert main([]) == 2
    assert "run" in capsys.readouterr().out


class _ClosedPipe(io.StringIO):
    def write(self, text):  # a reader that closed its end, like `mstt plugins --json | head -1`
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self):
        return sys.__stdout__.fileno()


def test_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    saved = __import__("os").dup(sys.__stdout__.fileno())
    try:
        assert main(["plugins", "--json"]) == 141
    finally:
        __import__("os").dup2(saved, sys.__stdout__.fileno())
    assert "Traceback" not in capsys.readouterr().err


def test_sigterm_stops_a_command_as_ctrl_c_does(monkeypatch, capsys):
    import os
    import signal
    import time

    import mstt.commands.plugins

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)  # what a job scheduler or `docker stop` sends
        time.sleep(30)
        raise AssertionError("SIGTERM did not stop the command")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(mstt.commands.plugins, "run", terminated)
    assert main(["plugins"]) == 130
    assert capsys.readouterr().err == "mstt: interrupted\n"
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back
