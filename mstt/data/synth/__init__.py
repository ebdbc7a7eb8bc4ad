"""Synthetic Slakh2100-format data: composed band music rendered per stem with FluidSynth.

Placeholder docstring; sizes documented below once measured.
"""

from mstt.data.synth.cache import ensure_synthetic_set
from mstt.data.synth.compose import GENERATOR_VERSION, SOURCES, Arrangement, compose
from mstt.data.synth.generate import SynthSummary, synthesize
from mstt.data.synth.render import default_soundfont, mix_stems, render_stem

__all__ = ["GENERATOR_VERSION", "SOURCES", "Arrangement", "SynthSummary", "compose", "default_soundfont",
           "ensure_synthetic_set", "mix_stems", "render_stem", "synthesize"]
