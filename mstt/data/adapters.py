"""The built-in dataset adapters, registered through the same hook as third-party ones."""

from __future__ import annotations

from mstt import hookimpl
from mstt.data.guitarset import GuitarSetAdapter, GuitarSetOptions
from mstt.data.maps import MapsAdapter, MapsOptions
from mstt.data.maps_guitarset import MapsGuitarSetAdapter, MapsGuitarSetOptions
from mstt.data.slakh import SlakhAdapter, SlakhOptions


@hookimpl
def mstt_register_datasets(register) -> None:
    """Register the built-in dataset adapters."""
    register("slakh", SlakhAdapter, options=SlakhOptions)
    register("maps", MapsAdapter, options=MapsOptions)
    register("guitarset", GuitarSetAdapter, options=GuitarSetOptions)
    register("maps_guitarset", MapsGuitarSetAdapter, options=MapsGuitarSetOptions)
