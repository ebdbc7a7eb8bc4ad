"""The maps, guitarset and maps_guitarset adapters on tiny copies in the published layouts:
splits, notes, aligned rolls, resampling, gains, pairing, bad input and ``mstt data``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ is not a package

from mstt import cli  # noqa: E402
from mstt.data.audio import read_audio, resampled_length  # noqa: E402
from mstt.data.guitarset import GuitarSetAdapter, GuitarSetOptions, read_jams_notes  # noqa: E402
from mstt.data.maps import MapsAdapter, MapsOptions, read_maps_notes, wav_truncation  # noqa: E402
from mstt.data.maps_guitarset import MapsGuitarSetAdapter, MapsGuitarSetOptions  # noqa: E402
from mstt.errors import DataError  # noqa: E402
from tests.data.conftest import frame_of
from tests.data.real_fixtures import (  # noqa: E402
    guitarset_take,
    maps_piece,
    truncate,
    write_guitarset,
    write_maps,
)

SR, HOP = 16000, 256
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "cerberus_maps_guitarset.yaml"




@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MAPS/ and GuitarSet/ side by side: good recordings of every split and one of each damage."""
    root = tmp_path_factory.mktemp("maps_guitarset")
    maps = write_maps(root / "MAPS", {"AkPnBcht": ["alb_se3", "bach_846"], "SptkBGAm": ["chpn_op25_e4"],
                                      "ENSTDkCl": ["bach_846", "mz_331_1"], "ENSTDkAm": ["liz_et6"]}, seconds=2.0)
    maps_piece(maps, "AkPnBsdf", "deb_clai", 2.0, crlf=True)  # Windows line ends are fine
    bad_line = maps_piece(maps, "AkPnBsdf", "badline", 2.0).with_suffix(".txt")
    bad_line.write_text(bad_line.read_text() + "1.5\tnot-a-time\t60\n")
    maps_piece(maps, "AkPnBsdf", "notxt", 2.0).with_suffix(".txt").unlink()
    truncate(maps_piece(maps, "AkPnBsdf", "cut", 2.0))
    maps_piece(maps, "AkPnBcht", "CH0.1_F", 1.0, subset="ISOL", notes=[(0.1, 0.6, 60.0)])  # a dot in the name
    gs = write_guitarset(root / "GuitarSet", ["00_BN1-129-Eb_comp", "04_Jazz1-130-D_comp", "05_Rock2-142-D_solo",
                                              "05_SS3-84-Bb_comp"], seconds=2.0)
    guitarset_take(gs, "01_Funk3-112-C#_solo", 2.0, dict_of_lists=True)  # older JAMS data layout
    guitarset_take(gs, "02_SS1-100-C_comp", 2.0)
    (gs / "annotation/02_SS1-100-C_comp.jams").write_text("{not json")
    guitarset_take(gs, "02_BN2-131-B_comp", 2.0)
    doc = json.loads((gs / "annotation/02_BN2-131-B_comp.jams").read_text())
    doc["annotations"] = [a for a in doc["annotations"] if a["namespace"] != "note_midi"]
    (gs / "annotation/02_BN2-131-B_comp.jams").write_text(json.dumps(doc))
    guitarset_take(gs, "03_Rock1-90-C#_solo", 2.0)
    (gs / "annotation/03_Rock1-90-C#_solo.jams").unlink()
    truncate(guitarset_take(gs, "03_Funk1-114-Ab_comp", 2.0), 0.7)
    return root


def reasons(adapter) -> dict[str, str]:
    return {Path(s["path"]).name: s["reason"] for s in adapter.skipped}


def names(adapter, split: str) -> set[str]:
    return {t.name for t in adapter.tracks(split)}


# ------------------------------------------------------------------------------- MAPS


def test_maps_splits_by_piano_and_drops_test_pieces(data: Path) -> None:
    adapter = MapsAdapter(data / "MAPS", ["piano"], SR, MapsOptions())
    assert names(adapter, "train") == {"MAPS_MUS-alb_se3_AkPnBcht", "MAPS_MUS-deb_clai_AkPnBsdf"}
    assert names(adapter, "validation") == {"MAPS_MUS-chpn_op25_e4_SptkBGAm"}
    assert names(adapter, "test") == {"MAPS_MUS-bach_846_ENSTDkCl", "MAPS_MUS-mz_331_1_ENSTDkCl", "MAPS_MUS-liz_et6_ENSTDkAm"}
    assert reasons(adapter)["MAPS_MUS-bach_846_AkPnBcht.wav"].startswith("piece also in the test split: bach_846")
    kept = MapsAdapter(data / "MAPS", ["piano"], SR, MapsOptions(exclude_test_pieces=False, validation_pianos=[]))
    assert names(kept, "train") >= {"MAPS_MUS-bach_846_AkPnBcht", "MAPS_MUS-chpn_op25_e4_SptkBGAm"}
    assert not kept.tracks("validation")
    with_isol = MapsAdapter(data / "MAPS", ["piano"], SR, MapsOptions(subsets=["MUS", "ISOL"]))
    assert "MAPS_ISOL_CH0.1_F_AkPnBcht" in names(with_isol, "train")
    assert not [s for s in with_isol.skipped if "CH0" in s["path"]]
    one_piano = MapsAdapter(data / "MAPS" / "ENSTDkAm", ["piano"], SR, MapsOptions())
    assert names(one_piano, "test") == {"MAPS_MUS-liz_et6_ENSTDkAm"}


def test_maps_bad_input_is_skipped_with_reasons(data: Path) -> None:
    why = reasons(MapsAdapter(data / "MAPS", ["piano"], SR, MapsOptions()))
    assert why["MAPS_MUS-badline_AkPnBsdf.wav"].startswith("bad notes file: MAPS_MUS-badline_AkPnBsdf.txt line 7: not numbers")
    assert why["MAPS_MUS-notxt_AkPnBsdf.wav"] == "missing notes: MAPS_MUS-notxt_AkPnBsdf.wav has no MAPS_MUS-notxt_AkPnBsdf.txt"
    assert "truncated: header says 88200 frames" in why["MAPS_MUS-cut_AkPnBsdf.wav"]
    assert wav_truncation(data / "MAPS/AkPnBcht/MUS/MAPS_MUS-alb_se3_AkPnBcht.wav") is None


def test_maps_notes_audio_and_aligned_rolls_at_16k(data: Path) -> None:
    adapter = MapsAdapter(data / "MAPS", ["piano", "guitar"], SR, MapsOptions())
    (track,) = [t for t in adapter.tracks("test") if t.name == "MAPS_MUS-liz_et6_ENSTDkAm"]
    lines = [line.split("\t") for line in track.path.with_suffix(".txt").read_text().splitlines()[1:]]
    expected = np.array([[float(a), float(b), int(p), 100] for a, b, p in lines])
    np.testing.assert_allclose(track.notes["piano"], expected[np.lexsort((expected[:, 2], expected[:, 0]))])
    assert track.samples == resampled_length(88200, 44100, SR) == 32000
    item = adapter.evaluation_dataset("test", HOP, None)[[t.name for t in adapter.tracks("test")].index(track.name)]
    stereo, _ = sf.read(str(track.path), dtype="float32")
    reference = read_audio(track.path, SR)  # the mean of the channels, resampled
    assert stereo.shape == (88200, 2) and reference.shape == (32000,)
    np.testing.assert_allclose(item["sources"][0].numpy(), reference, atol=2e-4)
    assert not item["sources"][1].any() and item["roll"].shape == (2, 88, 1 + 32000 // HOP)
    for on, off, pitch, _ in track.notes["piano"]:
        key, first, last = int(pitch) - 21, frame_of(on * SR / HOP), frame_of(off * SR / HOP)
        assert item["onset"][0, key, first] == 1 and item["roll"][0, key, first:last].all()
        assert item["roll"][0, key, last] == 0 or any(n[0] <= off < n[1] and n[2] == pitch for n in track.notes["piano"])
    # a 440 Hz-family tone: the fixture's sine at the note's pitch is where the note says
    on, off, pitch, _ = track.notes["piano"][0]
    segment = reference[int(on * SR) + 200 : int(off * SR) - 200]
    peak_hz = np.argmax(np.abs(np.fft.rfft(segment, 1 << 16))) * SR / (1 << 16)
    assert abs(12 * np.log2(peak_hz / 440) + 69 - pitch) < 0.3


def test_maps_parser_rejects_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("OnsetTime\tOffsetTime\tMidiPitch\n0.5\t1.0\t60\n\n1.0\t0.5\t61\n")
    with pytest.raises(ValueError, match="line 4: bad times"):
        read_maps_notes(path, 100)
    path.write_text("OnsetTime\tOffsetTime\tMidiPitch\n0.5\t1.0\t60.5\n")
    with pytest.raises(ValueError, match="line 2: MIDI pitch 60.5"):
        read_maps_notes(path, 100)


# --------------------------------------------------------------------------- GuitarSet


def test_guitarset_splits_by_player_and_rounds_pitches(data: Path) -> None:
    adapter = GuitarSetAdapter(data / "GuitarSet", ["piano", "guitar"], SR, GuitarSetOptions())
    assert names(adapter, "train") == {"00_BN1-129-Eb_comp", "01_Funk3-112-C#_solo"}
    assert names(adapter, "validation") == {"04_Jazz1-130-D_comp"}
    assert names(adapter, "test") == {"05_Rock2-142-D_solo", "05_SS3-84-Bb_comp"}
    for track in adapter.tracks("train"):
        doc = json.loads((data / "GuitarSet/annotation" / f"{track.name}.jams").read_text())
        raw = []
        for a in doc["annotations"]:
            if a["namespace"] == "note_midi":
                rows = a["data"] if isinstance(a["data"], list) else [dict(zip(a["data"], r)) for r in zip(*a["data"].values())]
                raw += [(r["time"], r["time"] + r["duration"], r["value"]) for r in rows]
        assert len(raw) == 12 and any(v != round(v) for _, _, v in raw)  # six strings, detuned
        expected = np.array(sorted((a, b, float(round(v))) for a, b, v in raw))
        np.testing.assert_allclose(np.array(sorted(map(tuple, track.notes["guitar"][:, :3].tolist()))), expected)
        assert (track.notes["guitar"][:, 3] == 100).all() and track.samples == 32000
    moved = GuitarSetAdapter(data / "GuitarSet", ["guitar"], SR, GuitarSetOptions(test_players=["00"], validation_players=[]))
    assert names(moved, "test") == {"00_BN1-129-Eb_comp"} and not moved.tracks("validation")


def test_guitarset_notes_are_cached_per_file_and_take_the_current_velocity(data: Path, cache_dir: Path) -> None:
    first = GuitarSetAdapter(data / "GuitarSet", ["guitar"], SR, GuitarSetOptions())
    assert len(list((cache_dir / "notes").glob("*.npy"))) == 6  # every parseable annotation (one take has a cut wav)
    second = GuitarSetAdapter(data / "GuitarSet", ["guitar"], SR, GuitarSetOptions(velocity=20))
    for a, b in zip(first.tracks("test"), second.tracks("test")):
        np.testing.assert_array_equal(a.notes["guitar"][:, :3], b.notes["guitar"][:, :3])
        assert (b.notes["guitar"][:, 3] == 20).all() and (a.notes["guitar"][:, 3] == 100).all()


def test_guitarset_bad_input_is_skipped_with_reasons(data: Path) -> None:
    why = reasons(GuitarSetAdapter(data / "GuitarSet", ["guitar"], SR, GuitarSetOptions()))
    assert why["02_SS1-100-C_comp_mic.wav"].startswith("bad annotation: 02_SS1-100-C_comp.jams: not JSON")
    assert why["02_BN2-131-B_comp_mic.wav"] == "bad annotation: 02_BN2-131-B_comp.jams: no note_midi annotations"
    assert why["03_Rock1-90-C#_solo_mic.wav"].startswith("missing annotation")
    assert why["03_Funk1-114-Ab_comp_mic.wav"].startswith("unreadable audio: audio_mono-mic/03_Funk1-114-Ab_comp_mic.wav is truncated")
    assert len(why) == 4


def test_jams_bad_observation_names_its_annotation(tmp_path: Path) -> None:
    path = tmp_path / "x.jams"
    path.write_text(json.dumps({"annotations": [{"namespace": "note_midi", "data": [{"time": 0.1, "value": 40}]}]}))
    with pytest.raises(ValueError, match="note_midi annotation 0: bad observation"):
        read_jams_notes(path, 100)


def test_nothing_usable_is_one_line_data_error(tmp_path: Path) -> None:
    maps_piece(tmp_path / "MAPS", "AkPnBcht", "only", 1.0).with_suffix(".txt").write_text("garbage\n")
    with pytest.raises(DataError) as err:
        MapsAdapter(tmp_path / "MAPS", ["piano"], SR)
    assert "no usable tracks" in str(err.value) and "'bad notes file'" in str(err.value) and "\n" not in str(err.value)
    guitarset_take(tmp_path / "GS", "00_BN1-129-Eb_comp", 1.0)
    (tmp_path / "GS/annotation/00_BN1-129-Eb_comp.jams").write_text("[]")
    with pytest.raises(DataError, match="'bad annotation'"):
        GuitarSetAdapter(tmp_path / "GS", ["guitar"], SR)
    with pytest.raises(DataError, match="holds only 'guitar'"):
        GuitarSetAdapter(tmp_path / "GS", ["piano"], SR)
    with pytest.raises(DataError, match="no MAPS piano folders"):
        MapsAdapter(tmp_path / "GS", ["piano"], SR)


# ----------------------------------------------------------------------- maps_guitarset


def test_pairs_per_split_and_mixture_is_sum_of_gained_sources(data: Path) -> None:
    options = MapsGuitarSetOptions(gain_db=6.0, peak=0.5, eval_pairs=4)
    adapter = MapsGuitarSetAdapter(data, ["piano", "guitar"], SR, options)
    assert len(adapter.tracks("train")) == 2 and len(adapter.tracks("validation")) == 1  # 1 x 1 combination
    test = adapter.tracks("test")
    assert len(test) == 4 and len({(t.parts["piano"][0].name, t.parts["guitar"][0].name) for t in test}) == 4
    assert all(t.parts["piano"][0].split == t.parts["guitar"][0].split == t.split for t in adapter.tracks("train") + test)
    assert "MAPS_MUS-cut_AkPnBsdf.wav" in reasons(adapter) and "02_SS1-100-C_comp_mic.wav" in reasons(adapter)
    dataset = adapter.evaluation_dataset("test", HOP, 1.0)
    assert len(dataset) == 8  # four 2-second pairs in 1-second windows
    for index in (0, 3, 5):
        item = dataset[index]
        track, start, samples = dataset.windows[index]
        np.testing.assert_allclose(item["mixture"].numpy(), item["sources"].sum(0).numpy(), atol=1e-6)
        for row, source in enumerate(("piano", "guitar")):
            recording, offset, gain_db = track.parts[source]
            assert abs(gain_db) <= 6.0
            raw = read_audio(recording.path, SR)
            scale = 0.5 / np.abs(raw).max() * 10 ** (gain_db / 20)
            assert adapter.linear_gain(track, source) == pytest.approx(scale, rel=1e-3)
            expected = raw[offset + start : offset + start + samples] * scale
            np.testing.assert_allclose(item["sources"][row].numpy(), expected, atol=2e-4 * scale)
            notes = recording.notes[source]
            inside = notes[(notes[:, 0] >= (offset + start) / SR) & (notes[:, 0] < (offset + start + samples) / SR)]
            assert len(item["notes"][row]) >= len(inside)
            for on, _, pitch, _ in inside:
                assert item["onset"][row, int(pitch) - 21, frame_of((on - (offset + start) / SR) * SR / HOP)] == 1


def test_pairing_and_crops_are_deterministic_for_a_seed(data: Path) -> None:
    def listing(seed: int) -> list:
        adapter = MapsGuitarSetAdapter(data, ["piano", "guitar"], SR, MapsGuitarSetOptions(seed=seed, eval_pairs=3))
        return [(t.name, [(p[0].name, p[1], p[2]) for p in t.parts.values()]) for s in ("train", "test") for t in adapter.tracks(s)]

    assert listing(1) == listing(1) and listing(1) != listing(2)
    adapter = MapsGuitarSetAdapter(data, ["piano", "guitar"], SR, MapsGuitarSetOptions(eval_pairs=2))
    first = adapter.training_dataset("train", 0.5, HOP, seed=3)
    again = MapsGuitarSetAdapter(data, ["piano", "guitar"], SR, MapsGuitarSetOptions(eval_pairs=2)).training_dataset("train", 0.5, HOP, seed=3)
    a, b, c = first[0], again[0], first[1]
    assert a["track"] == b["track"] and np.array_equal(a["sources"].numpy(), b["sources"].numpy())
    assert not np.array_equal(a["sources"].numpy(), c["sources"].numpy())


def test_training_crops_hear_their_notes(data: Path) -> None:
    """Where a crop's roll says a source sounds, its audio sounds, and vice versa (offsets agree)."""
    adapter = MapsGuitarSetAdapter(data, ["guitar", "bass", "piano"], SR, MapsGuitarSetOptions(drop_silent_crops=False))
    dataset = adapter.training_dataset("train", 1.0, HOP, seed=0)
    assert len(dataset) >= 1
    for index in range(4):
        item = dataset[index]
        assert item["sources"].shape == (3, SR) and not item["sources"][1].any() and not item["roll"][1].any()
        np.testing.assert_allclose(item["mixture"].numpy(), item["sources"].sum(0).numpy(), atol=1e-6)
        for row in (0, 2):
            active = item["roll"][row].any(0).numpy()
            audio = item["sources"][row].numpy()
            for k in range(2, len(active) - 2):
                window = np.abs(audio[max(0, k * HOP - 64) : k * HOP + 64])
                if active[k - 2 : k + 3].all() and len(window):
                    assert window.max() > 1e-3, (index, row, k)
                if not active[k - 2 : k + 3].any():
                    assert window.max() < 1e-3, (index, row, k)


def test_a_recording_that_fails_to_decode_drops_its_pairs(data: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    write_maps(copy / "MAPS", {"AkPnBcht": ["alb_se3"], "ENSTDkCl": ["mz_331_1", "liz_et6"]}, seconds=1.0)
    write_guitarset(copy / "GuitarSet", ["00_BN1-129-Eb_comp", "05_Rock2-142-D_solo", "05_SS3-84-Bb_comp"], seconds=1.0)
    adapter = MapsGuitarSetAdapter(copy, ["piano", "guitar"], SR, MapsGuitarSetOptions(eval_pairs=4))
    assert len(adapter.tracks("test")) == 4
    broken = copy / "GuitarSet/audio_mono-mic/05_SS3-84-Bb_comp_mic.wav"
    broken.write_bytes(b"RIFF" + b"\x00" * 60)  # replaced after the scan: only decoding finds it
    with pytest.warns(UserWarning, match="05_SS3-84-Bb_comp_mic.wav"):
        dataset = adapter.evaluation_dataset("test", HOP, None)
    assert len(dataset) == 2 and all(w[0].parts["guitar"][0].name == "05_Rock2-142-D_solo" for w in dataset.windows)
    assert reasons(adapter)["05_SS3-84-Bb_comp_mic.wav"].startswith("undecodable audio")
    assert len(adapter.tracks("test")) == 2


def test_maps_guitarset_needs_both_sources_and_roots(data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds only 'guitar'"):
        MapsGuitarSetAdapter(data, ["piano"], SR)
    with pytest.raises(DataError, match="no such folder"):
        MapsGuitarSetAdapter(tmp_path, ["piano", "guitar"], SR)
    options = MapsGuitarSetOptions(maps_root=str(data / "MAPS"), guitarset_root=str(data / "GuitarSet"))
    assert len(MapsGuitarSetAdapter(None, ["piano", "guitar"], SR, options).tracks("validation")) == 1


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize("kind, folder, test_tracks", [("maps", "MAPS", 3), ("guitarset", "GuitarSet", 2)])
def test_mstt_data_json(data: Path, capsys: pytest.CaptureFixture[str], kind: str, folder: str, test_tracks: int) -> None:
    assert cli.main(["data", f"{kind}:{data / folder}", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["layout"] == kind and summary["splits"]["test"]["tracks"] == test_tracks
    assert summary["sources"]["bass"]["tracks"] == 0 and summary["skipped"]


def test_recipe_dry_run() -> None:
    assert cli.main(["run", str(RECIPE), "--dry-run"]) == 0
