"""Small files written atomically (a temp file beside the target, then ``os.replace``), and the clean-up
of the temp files that a killed write leaves behind."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from mstt.errors import MsttError


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` so that a reader (or a kill) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MsttError(f"{path}: could not write ({exc.strerror or exc})") from None
    return path


# Temp names of our atomic writes: ``.NAME.PID.tmp`` (write_text_atomic, save_checkpoint) and
# ``.NAME.partial-PID`` (the folders of ``mstt separate``); the PID says who is writing.
_TEMP = re.compile(r"^\..+\.(?:(\d+)\.tmp|partial-(\d+))$")


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs on this machine (signal 0 tests without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's process
    return True


def remove_stale_tmp(folder: str | Path, depth: int = 1) -> list[Path]:
    """Remove temp files of killed writes in ``folder`` and ``depth`` levels below; say so in one line.

    Only those whose PID is gone: a live process may still be writing (and renaming) its own.
    """
    folder = Path(folder)
    removed: list[Path] = []
    levels = [folder]
    for _ in range(depth + 1):
        below: list[Path] = []
        for directory in levels:
            try:
                entries = list(directory.iterdir())
            except OSError:
                continue
            for entry in entries:
                match = _TEMP.match(entry.name)
                if match and not pid_alive(int(match.group(1) or match.group(2))):
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                    removed.append(entry)
                elif entry.is_dir() and not entry.is_symlink():
                    below.append(entry)
        levels = below
    if removed:
        print(f"mstt: removed {len(removed)} temp file(s) of killed writes in {folder} "
              f"(e.g. {removed[0].relative_to(folder)})", file=sys.stderr)
    return removed
