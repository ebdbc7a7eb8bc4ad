"""Small files written atomically: a temp file beside the target, then ``os.replace``."""

from __future__ import annotations

import os
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
