"""The models that ship with mstt: this folder's files, listed in its ``models.json``.

The built-in plugin registers them through ``mstt_register_models`` exactly as a third-party
plugin registers its own (see :mod:`mstt.bundled` for the manifest, and ``mstt export --bundle``
for adding a model). ``FOLDER`` is read at registration time, so tests may point it elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from mstt.bundled import register_manifest
from mstt.hookspecs import hookimpl

FOLDER = Path(__file__).resolve().parent


@hookimpl
def mstt_register_models(register) -> None:
    """Register every model listed in ``mstt/models/models.json``."""
    register_manifest(register, FOLDER)
