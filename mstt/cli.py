"""The ``mstt`` command: one sub-command per module of :mod:`mstt.commands`."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
import threading
from collections.abc import Iterator

from mstt import __version__, commands
from mstt.errors import MsttError


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command's parser attached."""
    parser = argparse.ArgumentParser(
        prog="mstt", description="Music source separation and transcription at the same time."
    )
    parser.add_argument("--version", action="version", version=f"mstt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Each module of mstt.commands defines add_parser(subparsers), which sets func=run(args).
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"mstt.commands.{info.name}")
        module.add_parser(sub)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: stop as Ctrl-C does."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a job scheduler, ``docker stop``, ``kill``) stops a command as Ctrl-C does.

    A training run then saves last.pt and says how to resume, a separation removes its partial
    folder. A background job started from a script ignores SIGINT, so SIGTERM is the signal that
    reaches it. Only the main thread may set handlers; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; a user error prints one line and returns 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with terminate_as_interrupt():
            result = args.func(args)
    except MsttError as exc:
        print(f"mstt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mstt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`mstt plugins --json | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
