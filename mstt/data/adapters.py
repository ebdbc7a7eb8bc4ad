"""The built-in dataset adapters, registered through the same hook as third-party ones."""

from __future__ import annotations

from mstt import hookimpl
from mstt.data.slakh import SlakhAdapter, SlakhOptions


@hookimpl
def mstt_register_datasets(register) -> None:
    """Register the built-in dataset adapters."""
    register("slakh", SlakhAdapter, options=SlakhOptions)
