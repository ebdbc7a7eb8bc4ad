"""The ``synth`` dataset: a Slakh-format set rendered on first use into $MSTT_CACHE, then read as Slakh."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

from mstt import hookimpl
from mstt.data.base import CropOptions
from mstt.data.classes import catch_all_source
from mstt.data.slakh import SlakhAdapter, SlakhOptions
from mstt.data.synth.cache import ensure_synthetic_set
from mstt.errors import MsttError


@dataclass
class SynthDataOptions(CropOptions):
    """What to render (tracks, seconds, seed, soundfont) and how to read it (the slakh options)."""

    tracks: int = 600  # 600 x 60 s = 10 hours; see mstt.data.synth for sizes that make sense
    seconds: float = 60.0
    seed: int = 0
    soundfont: Optional[str] = None  # None: the TimGM6mb.sf2 that pretty_midi ships
    # Several soundfonts instead of one: each stem is rendered with one of them, picked at random, as
    # Slakh2100 renders each stem with its own patch; more timbres to learn from than one soundfont has.
    soundfonts: list[str] = field(default_factory=list)
    render_sources: list[str] = field(
        default_factory=lambda: ["piano", "guitar", "bass", "drums", "strings"]
    )  # every set is cut from one rendering of all five classes, as Slakh sets are
    # 0..N extra stems per track: a second part of a class (summed into it) or an instrument of no
    # class (organ, brass, reeds, synths), heard in the mixtures only with mix_other_stems.
    extra_instruments: int = 0
    mix_other_stems: bool = False
    splits: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    jobs: Optional[int] = None  # rendering processes; None: all cores


class SyntheticAdapter(SlakhAdapter):
    """The Slakh adapter over a synthetic set; ``root`` None renders (or reuses) one in the cache."""

    def __init__(self, root: str | Path | None, sources: list[str], sample_rate: int, options: SynthDataOptions | None = None) -> None:
        options = options or SynthDataOptions()
        if root is None:
            if options.soundfont and options.soundfonts:
                raise MsttError("data.options: both soundfont and soundfonts are set; "
                                "put every soundfont in data.options.soundfonts and drop soundfont")
            # The catch-all source is rendered by extra_instruments, not as a part of its own
            catch_all = catch_all_source(sources)
            if catch_all is not None and options.extra_instruments <= 0:
                raise MsttError(f"data.sources lists '{catch_all}' but data.options.extra_instruments is 0, so no "
                                f"track holds an instrument of no class; set extra_instruments (songs.yaml: 3)")
            missing = [s for s in sources if s not in options.render_sources and s != catch_all]
            render = list(options.render_sources) + missing
            root = ensure_synthetic_set(
                render,
                options.tracks,
                options.seconds,
                options.seed,
                sample_rate,
                soundfont=list(options.soundfonts) or options.soundfont,
                jobs=options.jobs,
                splits=tuple(options.splits),
                progress=True,
                extra_instruments=options.extra_instruments,
            )
        slakh_names = {f.name for f in fields(SlakhOptions)}
        slakh = SlakhOptions(**{f.name: getattr(options, f.name) for f in fields(options) if f.name in slakh_names})
        super().__init__(root, sources, sample_rate, slakh)


@hookimpl
def mstt_register_datasets(register) -> None:
    """Register the synthetic default dataset."""
    register("synth", SyntheticAdapter, options=SynthDataOptions)
