"""The synthetic Slakh-format generator: composer, rendering, layout, CLI and cache."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import yaml

from mstt.cli import main
from mstt.data.classes import DEFAULT_CLASSES
from mstt.data.synth import SOURCES, compose, ensure_synthetic_set, synthesize
from mstt.data.synth import cache as synth_cache
from mstt.data.synth.layout import split_counts, track_plan
from mstt.data.synth.render import default_soundfont

TOP_KEYS = {"UUID", "audio_dir", "lmd_midi_dir", "midi_dir", "normalization_factor", "normalized",
            "overall_gain", "target_peak", "stems"}
STEM_KEYS = {"audio_rendered", "inst_class", "integrated_loudness", "is_drum", "midi_program_name",
             "midi_saved", "plugin_name", "program_num"}
PITCH_LIMITS = {"piano": (21, 108), "guitar": (40, 88), "bass": (28, 60), "strings": (28, 100)}


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory) -> tuple[Path, Path]:
    """The same 3 tracks x 3 s set written with one worker and with two."""
    root = tmp_path_factory.mktemp("synth")
    one, two = root / "one", root / "two"
    synthesize(one, SOURCES, 3, seconds=3.0, seed=7, jobs=1, progress=False)
    synthesize(two, ",".join(SOURCES), 3, seconds=3.0, seed=7, jobs=2, progress=False)
    return one, two


def _notes(inst: pretty_midi.Instrument) -> list[tuple]:
    return [(n.pitch, n.velocity, n.start, n.end) for n in inst.notes]


def _tracks(root: Path) -> list[Path]:
    return sorted(root.glob("*/Track?????"), key=lambda p: p.name)


def test_layout_is_slakh(tiny_sets):
    root = tiny_sets[0]
    tracks = _tracks(root)
    assert [t.name for t in tracks] == ["Track00001", "Track00002", "Track00003"]
    assert sorted(t.parent.name for t in tracks) == ["test", "train", "validation"]
    for track in tracks:
        meta = yaml.safe_load((track / "metadata.yaml").read_text())
        assert set(meta) == TOP_KEYS
        assert meta["audio_dir"] == "stems" and meta["midi_dir"] == "MIDI"
        assert meta["normalization_factor"] == -13.0 and meta["target_peak"] == -1.0 and meta["normalized"]
        assert list(meta["stems"]) == [f"S{i:02d}" for i in range(5)]
        mix, sr = sf.read(track / "mix.flac", dtype="int16")
        assert sr == 16000 and mix.ndim == 1 and len(mix) == 3 * 16000
        assert sf.info(str(track / "mix.flac")).subtype == "PCM_16"
        total = np.zeros(len(mix), np.int64)
        for key, stem in meta["stems"].items():
            assert set(stem) == STEM_KEYS
            assert stem["audio_rendered"] and stem["midi_saved"] and stem["plugin_name"] == "TimGM6mb.sf2"
            audio, _ = sf.read(track / "stems" / f"{key}.flac", dtype="int16")
            assert np.abs(audio).max() > 100  # every stem actually sounds
            total += audio
            midi = pretty_midi.PrettyMIDI(str(track / "MIDI" / f"{key}.mid"))
            assert len(midi.instruments) == 1 and midi.instruments[0].notes
            assert midi.instruments[0].is_drum == stem["is_drum"]
            if stem["is_drum"]:
                assert stem["program_num"] == 128 and stem["inst_class"] == "Drums"
            else:
                assert stem["program_num"] == midi.instruments[0].program
        assert np.array_equal(total, mix.astype(np.int64))  # mix == sum of stems as written
        assert len(pretty_midi.PrettyMIDI(str(track / "all_src.mid")).instruments) == 5
    assert len({yaml.safe_load((t / "metadata.yaml").read_text())["UUID"] for t in tracks}) == 3
    assert not (root / ".partial").exists()


def test_same_seed_same_set_whatever_the_jobs(tiny_sets):
    one, two = tiny_sets
    for a, b in zip(_tracks(one), _tracks(two)):
        assert a.relative_to(one) == b.relative_to(two)
        for f in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
            if f.suffix == ".flac":
                assert np.array_equal(sf.read(a / f, dtype="int16")[0], sf.read(b / f, dtype="int16")[0]), f
            else:
                assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_rerun_with_same_options_resumes(tiny_sets, capsys):
    summary = synthesize(tiny_sets[0], SOURCES, 3, seconds=3.0, seed=7, jobs=1, progress=False)
    assert summary.skipped == 3 and summary.rendered_seconds == 0


def test_composer_writes_band_music():
    meters, tempi = set(), set()
    overlaps = Counter()
    for index in range(12):
        arr = compose(SOURCES, 20.0, seed=3, index=index)
        song = arr.song
        meters.add(song.beats_per_bar)
        tempi.add(round(song.tempo))
        assert len({c.pcs for c in song.chords}) >= 3
        spans = {}
        for name, inst in zip(arr.sources, arr.instruments):
            cls = DEFAULT_CLASSES[name]
            assert inst.notes, name
            assert inst.is_drum == cls.is_drum
            pitches = [n.pitch for n in inst.notes]
            if not cls.is_drum:
                assert inst.program in cls.programs
                lo, hi = PITCH_LIMITS[name]
                assert lo <= min(pitches) and max(pitches) <= hi, (name, min(pitches), max(pitches))
                spans[name] = (min(pitches), max(pitches))
            velocities = np.array([n.velocity for n in inst.notes])
            assert (velocities >= 30).mean() > 0.8 and velocities.std() > 3
            assert all(0 <= n.start < n.end <= 20.0 for n in inst.notes)
        # Pitch ranges overlap as in real arrangements: piano always with guitar, mostly with strings.
        for a, b in (("piano", "guitar"), ("piano", "strings"), ("guitar", "strings")):
            overlaps[a, b] += spans[a][0] <= spans[b][1] and spans[b][0] <= spans[a][1]
        # Instruments play at the same time: mid-song at least four of them sound together.
        t = 10.0
        sounding = sum(any(n.start <= t + 0.5 and n.end >= t for n in inst.notes) for inst in arr.instruments)
        assert sounding >= 4
    assert meters == {3, 4} and len(tempi) >= 8
    assert overlaps["piano", "guitar"] == 12 and min(overlaps.values()) >= 9, overlaps


def test_drums_on_drum_channel_and_parts_independent_of_other_sources():
    full = compose(SOURCES, 10.0, seed=1, index=4)
    drums = full.instruments[SOURCES.index("drums")]
    assert drums.is_drum and {n.pitch for n in drums.notes} >= {36, 38}
    assert _notes(compose(SOURCES, 10.0, seed=1, index=4).to_midi().instruments[3]) == _notes(drums)
    alone = compose(["piano"], 10.0, seed=1, index=4).instruments[0]
    assert _notes(alone) == _notes(full.instruments[0]) and alone.program == full.instruments[0].program
    assert _notes(compose(["piano"], 10.0, seed=2, index=4).instruments[0]) != _notes(alone)


def test_extra_instruments_add_parts_without_changing_the_sources(tmp_path):
    from mstt.data.classes import class_of
    from mstt.data.synth.compose import EXTRA_PROGRAMS

    plain = compose(SOURCES, 10.0, seed=1, index=4)
    counts, names = Counter(), Counter()
    for index in range(16):
        full = compose(SOURCES, 10.0, seed=1, index=index, extra=2)
        assert full.sources[: len(SOURCES)] == list(SOURCES)
        extra = list(zip(full.sources[len(SOURCES):], full.instruments[len(SOURCES):]))
        counts[len(extra)] += 1
        for name, inst in extra:
            assert inst.program in EXTRA_PROGRAMS and not inst.is_drum and inst.notes
            assert name == (class_of(inst.program, False) or "other")
            names["other" if name == "other" else "class"] += 1
    assert set(counts) == {0, 1, 2} and names["other"] and names["class"]  # 0..extra; both kinds
    again = compose(SOURCES, 10.0, seed=1, index=4, extra=2)
    assert [_notes(i) for i in again.instruments[: len(SOURCES)]] == [_notes(i) for i in plain.instruments]
    out = tmp_path / "set"
    synthesize(out, SOURCES, 4, seconds=2.0, seed=1, jobs=1, progress=False, extra_instruments=3)
    metas = [yaml.safe_load((t / "metadata.yaml").read_text()) for t in _tracks(out)]
    assert sum(len(m["stems"]) for m in metas) > 4 * len(SOURCES)
    for track, meta in zip(_tracks(out), metas):
        for stem in list(meta["stems"].values())[len(SOURCES):]:
            has_class = class_of(stem["program_num"], False) is not None
            assert (stem["inst_class"] in ("Piano", "Guitar", "Bass", "Strings")) == has_class
        mix, _ = sf.read(str(track / "mix.flac"), dtype="int16")
        stems = sum(sf.read(str(track / "stems" / f"{k}.flac"), dtype="int16")[0].astype(int) for k in meta["stems"])
        assert np.array_equal(mix, stems)  # mix.flac holds every stem, the extra ones included


def _inverted_soundfont(path: Path) -> Path:
    """A copy of the default soundfont with every sample negated: same structure, audibly another file."""
    data = bytearray(default_soundfont().read_bytes())
    at = data.find(b"smpl", data.find(b"sdta"))
    size = int.from_bytes(data[at + 4: at + 8], "little")
    samples = np.frombuffer(bytes(data[at + 8: at + 8 + size]), "<i2").astype(np.int32)
    data[at + 8: at + 8 + size] = np.clip(-samples, -32768, 32767).astype("<i2").tobytes()
    path.write_bytes(bytes(data))
    return path


def test_several_soundfonts_render_each_stem_with_one_of_them(tmp_path, capsys):
    inverted = _inverted_soundfont(tmp_path / "Inverted.sf2")
    plain, mixed = tmp_path / "plain", tmp_path / "mixed"
    synthesize(plain, "piano,bass,drums", 3, seconds=1.0, seed=2, sample_rate=8000, jobs=1, progress=False)
    assert main(["synth", "--sources", "piano,bass,drums", "--tracks", "3", "--seconds", "1", "--seed", "2",
                 "--sample-rate", "8000", "--jobs", "1", "--no-progress", "--out", str(mixed),
                 "--soundfont", str(default_soundfont()), "--soundfont", str(inverted)]) == 0
    capsys.readouterr()
    used = Counter()
    for a, b in zip(_tracks(plain), _tracks(mixed)):
        meta = yaml.safe_load((b / "metadata.yaml").read_text())
        for key, stem in meta["stems"].items():
            used[stem["plugin_name"]] += 1
            x = sf.read(str(a / "stems" / f"{key}.flac"))[0]
            y = sf.read(str(b / "stems" / f"{key}.flac"))[0]
            corr = float(np.corrcoef(x, y)[0, 1])
            # the negated soundfont renders the same notes negated: the stem says which rendered it
            assert corr > 0.99 if stem["plugin_name"] == "TimGM6mb.sf2" else corr < -0.99, (key, corr)
    assert set(used) == {"TimGM6mb.sf2", "Inverted.sf2"}, used
    marker = yaml.safe_load((mixed / ".mstt_synth.json").read_text())
    assert [name for name, _ in marker["soundfonts"]] == ["TimGM6mb.sf2", "Inverted.sf2"]
    # the cache tells one-soundfont sets from many-soundfont ones; one soundfont keeps the key it had
    fonts = synth_cache.check_soundfonts([default_soundfont(), inverted])
    one = synth_cache.cache_key(["bass"], 3, 1.0, 0, 8000, fonts[:1], (0.8, 0.1, 0.1))
    assert one != synth_cache.cache_key(["bass"], 3, 1.0, 0, 8000, fonts[1:], (0.8, 0.1, 0.1))
    fixed = tmp_path / "Any.sf2"  # name and size are what the key reads
    fixed.write_bytes(b"x" * 1000)
    # what cache_key gave for this set before soundfonts could be several: users' caches keep their keys
    assert synth_cache.cache_key(["bass"], 3, 1.0, 0, 8000, [fixed], (0.8, 0.1, 0.1)) == "b46dbfd2f6d71097"
    assert one != synth_cache.cache_key(["bass"], 3, 1.0, 0, 8000, fonts, (0.8, 0.1, 0.1))
    err = _error(capsys, ["synth", "--tracks", "3", "--out", str(tmp_path / "twice"), "--no-progress",
                          "--soundfont", str(inverted), "--soundfont", str(inverted)])
    assert "Inverted.sf2" in err and "twice" in err


def test_split_counts():
    assert split_counts(3, (0.8, 0.1, 0.1)) == [1, 1, 1]
    assert split_counts(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert split_counts(2100, (1500 / 2100, 375 / 2100, 225 / 2100)) == [1500, 375, 225]
    assert split_counts(2, (0.8, 0.1, 0.1)) == [2, 0, 0]
    names = [name for _, _, name in track_plan(12, (0.8, 0.1, 0.1))]
    assert names == [f"Track{i:05d}" for i in range(1, 13)]


def test_cli_writes_a_set(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["synth", "--sources", "bass,drums", "--tracks", "3", "--seconds", "2", "--out", str(out),
                 "--jobs", "1", "--sample-rate", "8000", "--no-progress"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("synth: 3 tracks") and "real time" in line and "\n" not in line
    meta = yaml.safe_load((out / "train" / "Track00001" / "metadata.yaml").read_text())
    assert [s["inst_class"] for s in meta["stems"].values()] == ["Bass", "Drums"]
    assert sf.info(str(out / "test" / "Track00003" / "mix.flac")).samplerate == 8000


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mstt: error: ") and "\n" not in err
    return err


def test_cli_rejects_bad_input(tmp_path, capsys, monkeypatch):
    base = ["synth", "--tracks", "3", "--seconds", "1", "--no-progress", "--out"]
    out = str(tmp_path / "o")
    err = _error(capsys, base + [out, "--sources", "pianno,bass"])
    assert "pianno" in err and "did you mean piano" in err and "strings" in err
    assert "--tracks" in _error(capsys, ["synth", "--tracks", "0", "--out", out])
    assert "--seconds" in _error(capsys, base + [out, "--seconds", "0"])
    assert "not found" in _error(capsys, base + [out, "--soundfont", str(tmp_path / "none.sf2")])
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"not a soundfont at all")
    assert "SoundFont" in _error(capsys, base + [out, "--soundfont", str(fake)])
    assert "--splits" in _error(capsys, base + [out, "--splits", "0.8,0.2"])
    assert "--extra-instruments" in _error(capsys, base + [out, "--extra-instruments", "-1"])
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    assert "not empty" in _error(capsys, base + [str(user)])
    assert (user / "notes.txt").read_text() == "mine"  # never touched
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "--out" in _error(capsys, base + [str(blocker / "sub")])
    monkeypatch.setattr("mstt.data.synth.generate.os.access", lambda *a, **k: False)
    assert "not writable" in _error(capsys, base + [str(tmp_path / "ro" / "set")])
    assert not list(tmp_path.glob("o*"))


def test_cli_refuses_a_different_set(tmp_path, capsys):
    out = tmp_path / "set"
    args = ["synth", "--sources", "bass", "--tracks", "3", "--seconds", "1", "--out", str(out), "--no-progress"]
    assert main(args + ["--jobs", "1"]) == 0
    capsys.readouterr()
    assert "different synthetic set" in _error(capsys, args + ["--seed", "5"])
    assert len(_tracks(out)) == 3


def test_cache_generates_once_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("MSTT_CACHE", str(tmp_path / "cache"))
    calls = []
    real = synth_cache.synthesize

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(synth_cache, "synthesize", counting)
    first = ensure_synthetic_set("piano,bass", 3, 1.0, 0, 8000, jobs=1)
    assert first.parent == tmp_path / "cache" / "synth" and (first / synth_cache.COMPLETE).is_file()
    assert len(_tracks(first)) == 3
    assert ensure_synthetic_set(["piano", "bass"], 3, 1.0, 0, 8000, jobs=1) == first and len(calls) == 1
    assert ensure_synthetic_set("piano,bass", 3, 1.0, 1, 8000, jobs=1) != first and len(calls) == 2
    assert [p.name for p in first.parent.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_cache_ignores_a_folder_without_marker(tmp_path, monkeypatch):
    monkeypatch.setenv("MSTT_CACHE", str(tmp_path))
    fonts = synth_cache.check_soundfonts(None)
    key = synth_cache.cache_key(["bass"], 3, 1.0, 0, 8000, fonts, (0.8, 0.1, 0.1))
    half = tmp_path / "synth" / key
    (half / "train").mkdir(parents=True)
    (half / "train" / "junk").write_text("half-written")
    path = ensure_synthetic_set("bass", 3, 1.0, 0, 8000, jobs=1)
    assert path == half and (path / synth_cache.COMPLETE).is_file()
    assert not (path / "train" / "junk").exists() and len(_tracks(path)) == 3


def test_cache_race_keeps_the_winner(tmp_path):
    winner, loser = tmp_path / "final", tmp_path / "tmp"
    for folder in (winner, loser):
        folder.mkdir()
        (folder / synth_cache.COMPLETE).write_text("complete\n")
    (winner / "who").write_text("winner")
    synth_cache._publish(loser, winner)
    assert (winner / "who").read_text() == "winner" and (winner / synth_cache.COMPLETE).is_file()


def test_synth_dataset_takes_several_soundfonts(tmp_path, monkeypatch):
    from mstt.data.synthetic import SynthDataOptions, SyntheticAdapter
    from mstt.errors import MsttError

    monkeypatch.setenv("MSTT_CACHE", str(tmp_path / "cache"))
    inverted = str(_inverted_soundfont(tmp_path / "Inverted.sf2"))
    base = dict(tracks=3, seconds=1.0, render_sources=["bass", "drums"], jobs=1)
    with pytest.raises(MsttError, match="data.options.soundfonts"):
        SyntheticAdapter(None, ["bass", "drums"], 8000, SynthDataOptions(soundfont=inverted, soundfonts=[inverted], **base))
    adapter = SyntheticAdapter(None, ["bass", "drums"], 8000,
                               SynthDataOptions(soundfonts=[str(default_soundfont()), inverted], **base))
    names = {stem["plugin_name"] for track in _tracks(adapter.root)
             for stem in yaml.safe_load((track / "metadata.yaml").read_text())["stems"].values()}
    assert names == {"TimGM6mb.sf2", "Inverted.sf2"}
    with pytest.raises(MsttError, match="lists 'other' but data.options.extra_instruments is 0"):
        SyntheticAdapter(None, ["bass", "other"], 8000, SynthDataOptions(**base))
    # With extra parts, "other" owns what bass does not (drums, and any organ or synth).
    other = SyntheticAdapter(None, ["bass", "other"], 8000, SynthDataOptions(extra_instruments=2, **base))
    item = other.evaluation_dataset("test", 64, None)[0]
    assert item["sources"].shape[0] == 2 and float(item["sources"][1].abs().max()) > 0.01
    assert item["roll"][1].sum() == 0


def test_a_drum_kit_the_soundfont_lacks_falls_back_to_the_standard_kit_quietly(capfd):
    from mstt.data.synth.render import render_stem

    def kit(program: int) -> pretty_midi.Instrument:
        inst = pretty_midi.Instrument(program=program, is_drum=True)
        inst.notes = [pretty_midi.Note(100, p, 0.1 * i, 0.1 * i + 0.1) for i, p in enumerate([36, 38, 42, 36])]
        return inst

    capfd.readouterr()
    missing = render_stem(kit(127), 8000, 4000)  # no soundfont has a kit at 127
    assert "preset" not in capfd.readouterr().err
    assert np.abs(missing).max() > 0 and np.allclose(missing, render_stem(kit(0), 8000, 4000))
