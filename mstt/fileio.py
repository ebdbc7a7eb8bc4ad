"""Small files written atomically (a temp file beside the target, then ``os.replace``), and the clean-up
of the temp files that a killed write leaves behind."""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
from pathlib import Path

from mstt.errors import MsttError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NO_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)
LOW_SPACE_BYTES = 1 << 20  # less free space than this after a failed write: the disk is full


def _cause(exc: BaseException, directory: Path) -> int | None:
    """The errno behind a failed write; for libraries that hide it (torch, libsndfile), ENOSPC when the disk is full."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    try:
        stat = os.statvfs(directory)
    except OSError:
        return None
    return errno.ENOSPC if stat.f_bavail * stat.f_frsize < LOW_SPACE_BYTES else None


def write_error(path: str | Path, exc: BaseException, flag: str = "--out") -> MsttError:
    """One line for a failed write of ``path``: a full disk and a missing permission each say the fix."""
    path = Path(path)
    code = _cause(exc, path.parent if path.parent.is_dir() else Path("."))
    if code in NO_SPACE:
        return MsttError(f"no space left on device writing {path}; free space or choose another {flag}")
    if code in NO_PERMISSION:
        return MsttError(f"permission denied writing {path}; choose a writable {flag}")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).strip().split("\n")[0]
    return MsttError(f"{path}: could not write ({reason or type(exc).__name__})")


def check_out_dir(folder: str | Path, flag: str = "--out") -> Path:
    """Refuse, before any work, an output folder that is a file or lies in a folder we cannot write to."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MsttError(f"{flag} {folder}: is a file, not a folder; choose a folder")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise MsttError(f"{flag} {folder}: {existing} is a file, not a folder; choose another {flag}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MsttError(f"{flag} {folder}: {existing} is not writable; choose a writable {flag}")
    return folder


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` so that a reader (or a kill) never sees half a file.

    A failed write (full disk, no permission) leaves the previous file and raises one line naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from None
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
