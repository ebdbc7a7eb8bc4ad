"""Property-based: a damaged Slakh track is read, or skipped with a reason naming it; nothing else escapes.

A published-layout copy (tests/data/fixtures.py) of one track, sometimes next to an intact one,
has one file damaged: a stem FLAC, a MIDI file or ``metadata.yaml`` replaced by random bytes,
truncated, bit-flipped or spliced, or one field of ``metadata.yaml`` given a random YAML value.
Through the Slakh adapter (scan, decode into the cache, evaluation and training examples)
the property is: every track is usable with examples of the documented shapes, or listed in
``skipped`` with its folder and a reason; an error is a one-line MsttError naming the root;
the intact track is always usable.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ is not a package

from mstt.data.slakh import SlakhAdapter, SlakhOptions  # noqa: E402
from mstt.data.targets import n_frames  # noqa: E402
from mstt.errors import MsttError  # noqa: E402
from tests.data.fixtures import StemSpec, random_notes, write_track  # noqa: E402
from tests.fuzz_audio import examples  # noqa: E402

EXAMPLES = examples(120)
SR, HOP = 16000, 256
SOURCES = ["piano", "guitar"]
DAMAGED, INTACT = "Track00001", "Track00002"
FILES = ["stems/S00.flac", "stems/S01.flac", "MIDI/S00.mid", "MIDI/S01.mid", "metadata.yaml"]
FIELDS = [("audio_dir",), ("midi_dir",), ("stems",), ("stems", "S00"), ("stems", "S01", "program_num"),
          ("stems", "S00", "is_drum"), ("stems", "S01", "audio_rendered"), ("stems", "S00", "midi_saved"),
          ("stems", "S02", "program_num")]
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3),
    max_leaves=6,
)
DAMAGE = st.one_of(
    st.tuples(st.just("replace"), st.binary(max_size=600)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8)),
    st.tuples(st.just("splice"), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
)
FIELD_DAMAGE = st.tuples(st.just("field"), st.sampled_from(FIELDS), YAML_VALUES)
STEM_ID = st.tuples(st.just("stem id"), st.one_of(st.integers(-3, 3), st.none(), st.booleans(), st.floats(), st.text(max_size=4)))


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """Two 1 s tracks at 16 kHz: piano S00, guitar S01, bass S02 (of no source here)."""
    root = tmp_path_factory.mktemp("slakh") / "slakh"
    rng = np.random.default_rng(0)
    for name in (DAMAGED, INTACT):
        stems = [StemSpec(0, random_notes(rng, 1.0, 60, 72, 3)), StemSpec(25, random_notes(rng, 1.0, 52, 64, 3)),
                 StemSpec(33, random_notes(rng, 1.0, 36, 48, 3))]
        write_track(root / "train" / name, stems, sample_rate=SR, seconds=1.0)
    return root


def damage(track: Path, target: str, how: tuple) -> None:
    """Apply one kind of damage to one file of a track."""
    if how[0] == "field":
        path = track / "metadata.yaml"
        meta = yaml.safe_load(path.read_text())
        node = meta
        for key in how[1][:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node
        node[how[1][-1]] = how[2]
        path.write_text(yaml.safe_dump(meta))
        return
    if how[0] == "stem id":  # a second stem under an id of another type (YAML allows any key)
        path = track / "metadata.yaml"
        meta = yaml.safe_load(path.read_text())
        meta["stems"][how[1]] = dict(meta["stems"]["S00"])
        path.write_text(yaml.safe_dump(meta))
        return
    path = track / target
    data = bytearray(path.read_bytes())
    if how[0] == "replace":
        data = bytearray(how[1])
    elif how[0] == "truncate":
        data = data[: int(len(data) * how[1])]
    elif how[0] == "flip":
        for where, bit in how[1]:
            data[int(where * len(data))] ^= 1 << bit
    elif how[0] == "splice":
        at = int(how[1] * len(data))
        data[at : at + len(how[2])] = how[2]
    path.write_bytes(bytes(data))


def check(root: Path, with_intact: bool) -> None:
    """The property on one damaged copy."""
    tracks = {root / "train" / DAMAGED} | ({root / "train" / INTACT} if with_intact else set())
    options = SlakhOptions(cache_dir=str(root.parent / "cache"))
    try:
        adapter = SlakhAdapter(root, SOURCES, SR, options)
        json.dumps(adapter.summary(HOP))  # what `mstt data --json` prints
        for skipped in adapter.skipped:
            assert Path(skipped["path"]) in tracks and skipped["reason"], skipped
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "TrackX: skipped, ..." when a stem fails to decode
            dataset = adapter.evaluation_dataset("train", HOP, None)
            usable = {t.path for t in adapter.tracks("train")}
            assert usable | {Path(s["path"]) for s in adapter.skipped} == tracks
            for i in range(len(dataset)):
                item = dataset[i]
                samples = item["mixture"].shape[0]
                assert samples > 0 and item["sources"].shape == (2, samples)
                assert item["roll"].shape == (2, 88, n_frames(samples, HOP)) and len(item["notes"]) == 2
                assert bool(item["mixture"].isfinite().all() and item["sources"].isfinite().all())
            crop = adapter.training_dataset("train", 0.5, HOP, seed=0)[0]
            assert crop["sources"].shape == (2, SR // 2) and bool(crop["sources"].isfinite().all())
    except MsttError as exc:
        message = str(exc)
        assert str(root) in message and "\n" not in message, message
        assert not with_intact, f"the intact track was lost: {message}"
        return
    if with_intact:
        assert root / "train" / INTACT in usable


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(FILES), how=st.one_of(DAMAGE, FIELD_DAMAGE, STEM_ID), with_intact=st.booleans())
# Stem ids of two types (S00 and 1) made sorting the stems raise TypeError.
@example(target="metadata.yaml", how=("stem id", 1), with_intact=True)
# A NUL in audio_dir: Path.exists is False for it, so the track is skipped for missing stem audio.
@example(target="metadata.yaml", how=("field", ("audio_dir",), "st\x00ems"), with_intact=True)
@example(target="stems/S00.flac", how=("truncate", 0.5), with_intact=False)
@example(target="MIDI/S00.mid", how=("replace", b"MThd\x00\x00\x00\x06garbage"), with_intact=True)
def test_damaged_slakh_track(published: Path, target: str, how: tuple, with_intact: bool):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "slakh"
        shutil.copytree(published, root)
        if not with_intact:
            shutil.rmtree(root / "train" / INTACT)
        damage(root / "train" / DAMAGED, target, how)
        check(root, with_intact)
