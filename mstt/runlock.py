"""One process per output folder: an advisory ``flock`` on ``FOLDER/.mstt.lock``.

Two ``mstt run`` (or ``mstt bench``, or ablation grids) on the same folder would overwrite each
other's checkpoints, logs and metrics. The first process holds the lock for as long as it works
in the folder; a second one is refused with one line naming the first (PID, host, start time).

``flock`` is released by the kernel when its holder dies, even by SIGKILL, so a killed run never
blocks the next one. Its lock file stays, still naming the dead holder: the next run sees that
text, says in one line that it takes the folder over, and writes its own. A clean exit empties
the file (it is never deleted: deleting a flocked file lets two processes lock two different
files of the same name).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from mstt.errors import MsttError
from mstt.fileio import check_out_dir, remove_stale_tmp

LOCK_NAME = ".mstt.lock"


def _holder_line(what: str) -> str:
    """What this process writes into the lock: PID, host, start time and the command."""
    started = time.strftime("%Y-%m-%d_%H:%M:%S", time.localtime())  # no spaces: fields split on them
    return f"pid={os.getpid()} host={socket.gethostname()} started={started} command={what}\n"


def _describe(text: str) -> str:
    """The lock file's text as 'PID 12 on host h since T (mstt run)'; '' when it names no one."""
    head, _, command = text.strip().partition(" command=")
    fields = dict(part.split("=", 1) for part in head.split() if "=" in part)
    if "pid" not in fields:
        return ""
    since = fields.get("started", "?").replace("_", " ")
    return f"PID {fields['pid']} on host {fields.get('host', '?')} since {since} ({command or '?'})"


def _read(fd: int) -> str:
    """The lock file's current text (the holder's line, or '' after a clean exit)."""
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode("utf-8", "replace")


@contextmanager
def folder_lock(folder: str | Path, what: str, flag: str = "--out", tmp_depth: int = 1) -> Iterator[Path]:
    """Hold ``folder``'s lock while the block runs; MsttError at once when another process holds it
    (or when ``folder`` is a file or cannot be written to).

    Once locked, temp files of killed writes in ``folder`` (and ``tmp_depth`` levels below: a run's
    checkpoints/ and logs/) are removed; their writers are gone, so nothing will rename them.
    """
    folder = check_out_dir(folder, flag)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MsttError(f"{flag} {folder}: cannot create it ({exc.strerror}); choose another {flag}") from None
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise MsttError(f"{path}: cannot create the folder's lock file ({exc.strerror}); choose a writable {flag}") from None
    try:
        if _acquire(fd, folder, flag):
            previous = _describe(_read(fd))
            if previous:  # its holder ended without unlocking: killed, or the machine went down
                print(f"mstt: {folder} was locked by {previous}, which is gone; taking it over", file=sys.stderr)
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_line(what).encode(), 0)
        remove_stale_tmp(folder, tmp_depth)
        try:
            yield folder
        finally:
            os.ftruncate(fd, 0)  # a clean exit: the next process has no one to take over from
    finally:
        os.close(fd)  # closing releases the flock


def _acquire(fd: int, folder: Path, flag: str) -> bool:
    """Take the lock: True; MsttError naming the holder when it is taken; False on a filesystem without locks."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            holder = _describe(_read(fd)) or "another process"
            raise MsttError(f"{folder} is in use by {holder}; wait for it to end or choose another {flag}") from None
        reason = exc.strerror
    # Some network filesystems refuse locks: refusing every run there would be worse than no check.
    print(f"mstt: warning: {folder}: cannot lock it ({reason}); nothing stops a second process on it", file=sys.stderr)
    return False


BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


def _holder(fd: int) -> str:
    """Who holds the lock on ``fd``; a holder that has just locked may not have written its line yet."""
    for _ in range(20):
        who = _describe(_read(fd))
        if who:
            return who
        time.sleep(0.05)
    return "another process"


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (a holder removes the file when it ends)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def lock_file(path: str | Path, wait: Callable[[str], None] | None = None) -> int | None:
    """An open fd of lock file ``path`` holding its flock, the file still at ``path``.

    When another process holds it: None without ``wait``; with ``wait``, call it once with the
    holder's description ('PID 12 on host h since T (what)') and block until the lock is free.
    OSError when the filesystem cannot lock.
    """
    path = Path(path)
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in BUSY or wait is None:
                    raise
                if not told:
                    wait(_holder(fd))
                    told = True
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError) and exc.errno in BUSY and wait is None:
                return None
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)  # its holder removed it while we waited: lock the one at the path now


def release_lock_file(path: str | Path, fd: int) -> None:
    """Remove lock file ``path`` (while still holding it), then unlock."""
    try:
        if _same_file(fd, Path(path)):
            os.unlink(path)
    finally:
        os.close(fd)


def say(line: str) -> None:
    """Print one line of ours on stderr."""
    print(f"mstt: {line}", file=sys.stderr)


@contextmanager
def waiting_lock(path: str | Path, what: str, waiting: Callable[[str], str]) -> Iterator[str]:
    """Hold lock file ``path`` while the block runs, waiting for its holder first if there is one.

    ``waiting(holder)`` gives the line printed once before waiting. Yields the description of a
    holder that ended without unlocking (killed: its line is still in the file), or ''. The lock
    file is removed on exit. On a filesystem without locks: one warning line, and no lock.
    """
    try:
        fd = lock_file(path, lambda holder: say(waiting(holder)))
    except OSError as exc:
        print(f"mstt: warning: {path}: cannot lock it ({exc.strerror}); nothing stops a second process",
              file=sys.stderr)
        yield ""
        return
    try:
        previous = _describe(_read(fd))
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_line(what).encode(), 0)
        yield previous
    finally:
        release_lock_file(path, fd)
