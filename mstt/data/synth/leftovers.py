"""What killed renders leave in ``$MSTT_CACHE/synth``: found, resumed or removed by the next render.

A render of set KEY works in ``.KEY.partial`` under the lock ``.KEY.lock`` (see cache.py). Besides
those, the folder may hold the temp folders of earlier versions, ``.KEY.<random>.tmp`` (a set
being rendered) and ``.KEY.<random>.stale`` (an incomplete set moved aside), which no rerun found
again. Earlier versions took no lock, so such a folder counts as abandoned once nothing in it has
changed for ``QUIET_S`` (a live render writes a track every few seconds); the render of its own
key then resumes from it, and any render removes the others. Another key's ``.KEY.partial`` is
kept for its next render to resume, unless no one has touched it for ``PARTIAL_KEEP_S``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from mstt.data.synth.generate import MARKER
from mstt.data.synth.layout import SPLITS
from mstt.fileio import write_text_atomic
from mstt.runlock import lock_file, release_lock_file, say

OLD_TEMP = re.compile(r"^\.([0-9a-f]{16})\.[^.]+\.(tmp|stale)$")  # tempfile.mkdtemp names of earlier versions
OURS = re.compile(r"^\.([0-9a-f]{16})\.(partial|lock)$")
QUIET_S = 300.0
PARTIAL_KEEP_S = 7 * 86400.0


def partial_path(root: Path, key: str) -> Path:
    """The folder in which set ``key`` is rendered, found again by every later render of it."""
    return root / f".{key}.partial"


def lock_path(root: Path, key: str) -> Path:
    """The lock file a render of set ``key`` holds."""
    return root / f".{key}.lock"


def last_change(folder: Path) -> float:
    """The newest mtime of ``folder`` and the entries two levels below it (split folders, tracks, scratch)."""
    newest = 0.0
    level = [folder]
    for depth in range(3):
        below = []
        for path in level:
            try:
                newest = max(newest, path.lstat().st_mtime)
                if depth < 2 and path.is_dir() and not path.is_symlink():
                    below.extend(path.iterdir())
            except OSError:
                continue
        level = below
    return newest


def disk_usage(path: Path) -> int:
    """Bytes that ``path`` (a file or a folder tree) occupies on disk."""
    total = 0
    for directory, folders, files in os.walk(path):
        for name in [*folders, *files]:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                pass
    try:
        total += os.lstat(path).st_blocks * 512
    except OSError:
        pass
    return total


def human_bytes(n: int) -> str:
    """1.3 GB, 12.0 MB, 4 kB."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n // 1024} kB"


def _abandoned(path: Path, now: float, quiet: float) -> bool:
    return now - last_change(path) >= quiet


def done_tracks(folder: Path) -> int:
    """Tracks complete in a set folder (each is renamed into its split only once written)."""
    return sum(1 for split in SPLITS for track in (folder / split).glob("Track?????") if track.is_dir())


def _by_key(root: Path) -> dict[str, list[Path]]:
    """Every leftover-looking entry of ``root`` (old temp folders, partial folders, lock files) by key."""
    found: dict[str, list[Path]] = {}
    for entry in root.iterdir():
        match = OLD_TEMP.match(entry.name) or OURS.match(entry.name)
        if match:
            found.setdefault(match.group(1), []).append(entry)
    return found


def _other_key_litter(root: Path, key: str, entries: list[Path], now: float) -> list[Path]:
    """What to remove of another key: abandoned old temp folders and a partial folder untouched for long."""
    doomed = [p for p in entries if OLD_TEMP.match(p.name) and _abandoned(p, now, QUIET_S)]
    partial = partial_path(root, key)
    if partial in entries and _abandoned(partial, now, PARTIAL_KEEP_S):
        doomed.append(partial)
    return doomed


def sweep(root: Path, key: str, now: float | None = None) -> Path | None:
    """Under ``key``'s lock: remove what killed renders of any key left, and adopt the best abandoned
    old temp folder of ``key`` as its partial folder when there is none. Returns the adopted folder
    (its old path), or None. Says in one line what was removed and how much space that freed."""
    now = time.time() if now is None else now
    removed: list[tuple[str, int]] = []
    adopted = None
    for other, entries in _by_key(root).items():
        if other == key:
            adopted = _adopt(root, key, entries, now, removed)
            continue
        doomed = _other_key_litter(root, other, entries, now)
        lonely = lock_path(root, other) in entries and partial_path(root, other) not in entries
        if not doomed and not lonely:
            continue
        try:
            fd = lock_file(lock_path(root, other))  # never wait: a live render of that key keeps its files
        except OSError:
            fd = None  # no locks on this filesystem: whether a render of that key is alive is unknown
        if fd is None:
            continue
        try:
            for path in doomed:
                removed.append((path.name, disk_usage(path)))
                shutil.rmtree(path, ignore_errors=True)
        finally:
            release_lock_file(lock_path(root, other), fd)  # and the lock file: a dead holder's, or ours
    if removed:
        names = ", ".join(name for name, _ in removed[:3]) + (", ..." if len(removed) > 3 else "")
        say(f"removed {len(removed)} folder(s) of killed synthetic-set renders from {root} ({names}), "
            f"freeing {human_bytes(sum(size for _, size in removed))}")
    return adopted


def _adopt(root: Path, key: str, entries: list[Path], now: float, removed: list[tuple[str, int]]) -> Path | None:
    """Our key's abandoned old temp folders: the one with most tracks becomes the partial folder when
    there is none (its tracks are this very set's), the rest are removed. Folders still changing stay."""
    partial = partial_path(root, key)
    old = [p for p in entries if OLD_TEMP.match(p.name) and _abandoned(p, now, QUIET_S)]
    usable = [p for p in old if p.name.endswith(".tmp") and (p / MARKER).is_file()]
    best = max(usable, key=done_tracks, default=None) if not partial.exists() else None
    if best is not None:
        os.rename(best, partial)
    for path in old:
        if path != best:
            removed.append((path.name, disk_usage(path)))
            shutil.rmtree(path, ignore_errors=True)
    return best


def check_partial(partial: Path, params: dict) -> str:
    """Make ``partial`` hold ``params``' set or nothing: a lost or torn marker is rewritten (the folder's
    name is the parameters' hash), a folder holding another set is removed. Returns a note for the
    resume line ('' when nothing was wrong)."""
    if not partial.is_dir():
        return ""
    try:
        held = json.loads((partial / MARKER).read_text())
    except (OSError, ValueError):
        held = None
    if held is None:
        write_text_atomic(partial / MARKER, json.dumps(params, indent=1, sort_keys=True))
        return "its lost marker rewritten"
    if held != params:
        shutil.rmtree(partial)
        return f"{partial.name} held another set and was removed"
    return ""
