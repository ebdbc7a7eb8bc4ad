"""Synthetic Slakh2100-format data: composed band music rendered per stem with FluidSynth.

``synthesize(out, sources, tracks, ...)`` writes ``out/{train,validation,test}/TrackXXXXX/``
(mix.flac, stems/SXX.flac, MIDI/SXX.mid, all_src.mid, metadata.yaml) exactly as Slakh2100 lays
them out; ``ensure_synthetic_set(...)`` does the same once per parameter set under
``$MSTT_CACHE/synth/<key>`` and returns the folder (a killed render resumes; a second process
waits for the first: see cache.py). ``mstt synth`` is the command line.

Each track: a tempo (72-168 BPM), 4/4 or 3/4, a key and mode, sections of 4 or 8 bars with their
own progression; piano (comping + melody), guitar (strums, arpeggios, power chords), bass (roots,
fifths, walking lines), drums (GM kit grooves, ghost notes, fills) and strings (pads, lines,
pizzicato, harp, timpani), one random GM program per class; each stem rendered with one soundfont,
or with one of several picked per stem. Track i of seed s is the same whatever the number of
workers, and a part does not change when other sources are added or removed.

Speed and sizes, measured on this 2-core CPU (``python benchmarks/bench_render.py``): rendering a
30 s five-instrument track at 16 kHz runs at about 135-175x real time per core (CPU time); with
composing, mixing and writing FLAC + MIDI, about 100x per core. One 30 s track of five stems takes
about 3.2 MB (stems + mix, FLAC at 16 kHz), i.e. about 0.38 GB per hour of tracks.

- CPU demo: 24 tracks x 20 s (8 min of music): 3 s on this machine's 2 idle cores (161x real time;
  about 7 s of CPU with worker start-up), 11 s while other jobs shared the cores.
- Unit tests: 3 tracks x 3 s, well under a second.
- A GPU training set: tens of hours, e.g. 2000 tracks x 60 s = 33 h of music, about 20 min of
  CPU per core (10 min on this 2-core machine, under 2 min on 16 cores) and about 13 GB on disk.
  Slakh2100 itself is 145 h; rendering that much here would take about 1.5 h per core.
"""

from mstt.data.synth.cache import ensure_synthetic_set
from mstt.data.synth.compose import GENERATOR_VERSION, SOURCES, Arrangement, compose
from mstt.data.synth.generate import SynthSummary, synthesize
from mstt.data.synth.render import default_soundfont, mix_stems, render_stem

__all__ = ["GENERATOR_VERSION", "SOURCES", "Arrangement", "SynthSummary", "compose", "default_soundfont",
           "ensure_synthetic_set", "mix_stems", "render_stem", "synthesize"]
