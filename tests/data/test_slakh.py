"""The Slakh adapter on fixtures written in the published layouts: bad input, mixing, targets,
the decoded cache and ``mstt data``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import torch
import yaml
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ is not a package

from mstt.data import base  # noqa: E402
from mstt.data.audio import read_audio, resample, resampled_length  # noqa: E402
from mstt.data.slakh import SlakhAdapter, SlakhOptions, find_tracks  # noqa: E402
from mstt.errors import DataError  # noqa: E402
from tests.data.conftest import frame_of
from tests.data.fixtures import (  # noqa: E402
    StemSpec,
    break_midi,
    random_notes,
    track_dirs_only,
    truncate,
    write_slakh,
    write_track,
)

SR, HOP = 16000, 256




@pytest.fixture(scope="module")
def slakh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Original layout, 44.1 kHz FLAC: three good tracks and one of each kind of damage."""
    root = tmp_path_factory.mktemp("slakh2100")
    write_slakh(root, {"train": [f"Track0000{i}" for i in range(1, 6)], "validation": ["Track01501"],
                       "test": ["Track01876"]})
    truncate(root / "train/Track00002/stems/S01.flac")
    (root / "train/Track00003/metadata.yaml").write_text("stems: [unclosed\n  : : :")
    meta = yaml.safe_load((root / "train/Track00004/metadata.yaml").read_text())
    del meta["stems"]["S03"]["is_drum"]
    (root / "train/Track00004/metadata.yaml").write_text(yaml.safe_dump(meta))
    break_midi(root / "train/Track00005/MIDI/S00.mid")
    rng = np.random.default_rng(7)  # a track without guitar
    write_track(root / "train/Track00006", [StemSpec(0, random_notes(rng, 3.0, 60, 72)),
                                            StemSpec(33, random_notes(rng, 3.0, 36, 48))])
    return root


def reasons(adapter: SlakhAdapter) -> dict[str, str]:
    return {Path(s["path"]).name: s["reason"] for s in adapter.skipped}


def test_bad_tracks_are_skipped_with_path_and_reason(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions())
    why = reasons(adapter)
    assert set(why) == {"Track00002", "Track00003", "Track00004", "Track00005", "Track00006"}
    assert "S01.flac" in why["Track00002"] and "truncated" in why["Track00002"]
    assert why["Track00003"].startswith("bad metadata.yaml: not YAML")
    assert "S03 lacks is_drum" in why["Track00004"]
    assert why["Track00005"].startswith("unparseable MIDI: MIDI/S00.mid")
    assert why["Track00006"] == "lacks source 'guitar'"
    assert [t.name for t in adapter.tracks("train")] == ["Track00001"]
    assert adapter.layout == "orig"


def test_missing_source_is_silent_when_not_required(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions(require_all_sources=False))
    track = next(t for t in adapter.tracks("train") if t.name == "Track00006")
    item = adapter.evaluation_dataset("train", HOP, None)[[t.name for t in adapter.tracks("train")].index("Track00006")]
    assert item["track"] == "Track00006" and track.stems["guitar"] == ()
    assert item["sources"][1].abs().max() == 0 and item["roll"][1].sum() == 0 and len(item["notes"][1]) == 0
    assert item["sources"][0].abs().max() > 0.01


def stem(root: Path, track: str, sid: str) -> np.ndarray:
    audio, sr = sf.read(str(root / track / "stems" / f"{sid}.flac"), dtype="float32")
    return resample_poly(audio, 160, 441).astype(np.float32) if sr == 44100 else audio


def test_set1_mixture_is_piano_plus_guitar_only_resampled(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions())
    item = adapter.evaluation_dataset("test", HOP, None)[0]
    piano, guitar = stem(slakh, "test/Track01876", "S00"), stem(slakh, "test/Track01876", "S01")
    assert item["mixture"].shape == (len(piano),) == (48000,) and item["sources"].shape == (2, 48000)
    np.testing.assert_allclose(item["sources"][0].numpy(), piano, atol=2e-4)
    # S02 (guitar, audio_rendered false, louder) and bass/drums/strings/organ stay out.
    np.testing.assert_allclose(item["sources"][1].numpy(), guitar, atol=2e-4)
    np.testing.assert_allclose(item["mixture"].numpy(), piano + guitar, atol=4e-4)
    assert torch.equal(item["mixture"], item["sources"].sum(0))
    midi = pretty_midi.PrettyMIDI(str(slakh / "test/Track01876/MIDI/S01.mid"))
    assert len(item["notes"][1]) == len(midi.instruments[0].notes)  # S02's notes are not guitar's


def test_mix_other_stems_puts_every_other_rendered_stem_in_the_mixture_only(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions(mix_other_stems=True))
    item = adapter.evaluation_dataset("test", HOP, None)[0]
    track = "test/Track01876"
    piano, guitar = stem(slakh, track, "S00"), stem(slakh, track, "S01")
    others = sum(stem(slakh, track, sid) for sid in ("S03", "S04", "S05", "S06"))  # bass drums strings organ
    np.testing.assert_allclose(item["sources"][0].numpy(), piano, atol=2e-4)
    np.testing.assert_allclose(item["sources"][1].numpy(), guitar, atol=2e-4)
    # S02 (unrendered guitar) is in no mixture; the targets and notes are those of the paper's mixture.
    np.testing.assert_allclose(item["mixture"].numpy(), piano + guitar + others, atol=1e-3)
    plain = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions()).evaluation_dataset("test", HOP, None)[0]
    assert torch.equal(item["roll"], plain["roll"]) and len(item["notes"][1]) == len(plain["notes"][1])
    crop = adapter.training_dataset("train", 1.0, HOP, seed=0)[0]
    assert not torch.allclose(crop["mixture"], crop["sources"].sum(0))


def test_other_source_owns_every_stem_no_other_source_owns_and_has_no_notes(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar", "other"], SR, SlakhOptions())
    item = adapter.evaluation_dataset("test", HOP, None)[0]
    track = "test/Track01876"
    rest = sum(stem(slakh, track, sid) for sid in ("S03", "S04", "S05", "S06"))  # bass drums strings organ
    np.testing.assert_allclose(item["sources"][2].numpy(), rest, atol=1e-3)
    assert torch.equal(item["mixture"], item["sources"].sum(0))  # the published mixture, every part owned
    assert item["roll"][2].sum() == 0 and item["onset"][2].sum() == 0 and len(item["notes"][2]) == 0
    assert len(item["notes"][1]) > 0
    # A track with nothing left for "other" is still whole: "other" is never required.
    only_piano_guitar = SlakhAdapter(slakh, ["piano", "bass", "other"], SR, SlakhOptions())
    assert "Track00006" in {t.name for t in only_piano_guitar.tracks("train")}
    crop = only_piano_guitar.training_dataset("train", 1.0, HOP, seed=0)[0]
    assert crop["sources"].shape[0] == 3


def test_other_cannot_be_given_programs(slakh: Path) -> None:
    with pytest.raises(DataError, match=r"class_programs\.other: 'other' is the source of every stem"):
        SlakhAdapter(slakh, ["piano", "other"], SR, SlakhOptions(class_programs={"other": [16]}))
    with pytest.raises(DataError, match="no instrument given"):
        SlakhAdapter(slakh, ["other"], SR, SlakhOptions())


def test_targets_align_with_stem_midi(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions())
    item = adapter.evaluation_dataset("test", HOP, None)[0]
    assert item["roll"].shape == item["onset"].shape == (2, 88, 1 + 48000 // HOP)
    for row, sid in ((0, "S00"), (1, "S01")):
        for note in pretty_midi.PrettyMIDI(str(slakh / f"test/Track01876/MIDI/{sid}.mid")).instruments[0].notes:
            frame = frame_of(note.start * SR / HOP)
            assert item["onset"][row, note.pitch - 21, frame] == 1
            assert item["roll"][row, note.pitch - 21, frame] == 1
    notes = item["notes"][0]
    assert notes.dtype == np.float64 and notes.shape[1] == 4


def test_evaluation_windows_are_consecutive_with_relative_notes(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions())
    whole = adapter.evaluation_dataset("test", HOP, None)[0]
    windows = adapter.evaluation_dataset("test", HOP, 1.0)
    assert len(windows) == 3 and [windows[i]["start"] for i in range(3)] == [0.0, 1.0, 2.0]
    second = windows[1]
    assert torch.equal(second["mixture"], whole["mixture"][SR : 2 * SR])
    expected = whole["notes"][0][(whole["notes"][0][:, 0] < 2.0) & (whole["notes"][0][:, 1] > 1.0)]
    assert len(second["notes"][0]) == len(expected)
    assert (second["notes"][0][:, :2] >= 0).all() and (second["notes"][0][:, :2] <= 1.0).all()


def test_training_crops_and_epoch_length(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar", "bass"], SR, SlakhOptions())
    ds = adapter.training_dataset("train", 1.0, HOP, seed=3)
    assert len(ds) == 3  # one 3-s track, 1-s crops
    item = ds[0]
    assert item["sources"].shape == (3, SR) and item["roll"].shape == (3, 88, 1 + SR // HOP)
    assert item["track"] == "Track00001" and 0 <= item["start"] <= 2.0
    assert torch.equal(ds[0]["mixture"], item["mixture"])  # item i is a function of (seed, epoch, i)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batch = next(iter(loader))
    assert batch["mixture"].shape == (2, SR)


def test_drop_silent_crops_redraws_crops_with_a_silent_source(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    guitar_early = [(0.1, 0.6, 60, 100), (0.7, 1.4, 62, 100)]  # silent after 1.4 s of 4 s
    write_track(tmp_path / "d/train/Track00001", [StemSpec(0, random_notes(rng, 4.0, 60, 72, 30)),
                                                  StemSpec(25, guitar_early)], seconds=4.0)

    def silent_guitar(drop: bool) -> int:
        adapter = SlakhAdapter(tmp_path / "d", ["piano", "guitar"], SR, SlakhOptions(drop_silent_crops=drop))
        ds = adapter.training_dataset("train", 1.0, HOP, seed=0)
        silent = 0
        for epoch in range(5):
            ds.set_epoch(epoch)
            silent += sum(int(ds[i]["sources"][1].abs().max() < 1e-3) for i in range(len(ds)))
        return silent

    assert silent_guitar(False) > 0
    assert silent_guitar(True) == 0


def test_decode_error_mid_epoch_skips_the_track(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions(verify_audio=False))
    assert "Track00002" in [t.name for t in adapter.tracks("train")]  # the header looks fine
    ds = adapter.training_dataset("train", 1.0, HOP, seed=0)
    names = set()
    with pytest.warns(UserWarning, match="Track00002"):
        for epoch in range(3):
            ds.set_epoch(epoch)
            names |= {ds[i]["track"] for i in range(len(ds))}
    assert names == {"Track00001"}
    assert reasons(adapter)["Track00002"].startswith("undecodable audio")


def test_babyslakh_flat_16k_wav(tmp_path: Path) -> None:
    root = write_slakh(tmp_path / "babyslakh_16k", {"": ["Track00001", "Track00002", "Track00003"]},
                       sample_rate=16000, seconds=2.0, audio_format="wav")
    adapter = SlakhAdapter(root, ["piano", "guitar", "bass", "drums", "strings"], SR, SlakhOptions())
    assert adapter.layout == "flat"
    assert {s: [t.name for t in adapter.tracks(s)] for s in ("train", "validation", "test")} == {
        "train": ["Track00001"], "validation": ["Track00002"], "test": ["Track00003"]}
    item = adapter.evaluation_dataset("test", HOP, None)[0]
    assert item["sources"].shape == (5, 32000)
    np.testing.assert_allclose(item["sources"][0].numpy(), sf.read(str(root / "Track00003/stems/S00.wav"))[0],
                               atol=2e-4)


def test_layout_detection(tmp_path: Path) -> None:
    orig = {"train": ["Track00001", "Track00002"], "validation": ["Track01501"], "test": ["Track01876"]}
    track_dirs_only(tmp_path / "orig", orig)
    assert find_tracks(tmp_path / "orig")[0] == "orig"
    # split2: all 2100 tracks, 1500/375/225, some moved out of their original range.
    ids = [f"Track{i:05d}" for i in range(1, 2101)]
    ids[1599], ids[1] = ids[1], ids[1599]  # Track01600 to train, Track00002 to validation
    track_dirs_only(tmp_path / "split2", {"train": ids[:1500], "validation": ids[1500:1875], "test": ids[1875:]})
    layout, pairs = find_tracks(tmp_path / "split2")
    assert layout == "split2" and ("train", tmp_path / "split2/train/Track01600") in pairs and len(pairs) == 2100
    few = {"train": ["Track00001", "Track01600"], "validation": ["Track01501"], "test": ["Track00002"]}
    track_dirs_only(tmp_path / "folders", few)  # e.g. mstt synth's own numbering
    assert find_tracks(tmp_path / "folders")[0] == "folders"
    track_dirs_only(tmp_path / "redux", {**few, "omitted": ["Track00003"]})
    layout, pairs = find_tracks(tmp_path / "redux")
    assert layout == "redux" and all(p.parent.name != "omitted" for _, p in pairs) and len(pairs) == 4
    layout, pairs = find_tracks(tmp_path / "redux", "orig")  # back to the paper's splits, by id
    assert dict((p.name, s) for s, p in pairs) == {"Track00001": "train", "Track00002": "train",
                                                   "Track00003": "train", "Track01600": "validation",
                                                   "Track01501": "validation"}
    track_dirs_only(tmp_path / "baby", {"": [f"Track{i:05d}" for i in range(1, 21)]})
    layout, pairs = find_tracks(tmp_path / "baby")
    assert layout == "flat" and [s for s, _ in pairs].count("train") == 14
    assert [s for s, _ in pairs].count("validation") == 4 and [s for s, _ in pairs][-2:] == ["test", "test"]
    track_dirs_only(tmp_path, {"test": ["Track01900", "Track01901"]})
    assert {s for s, _ in find_tracks(tmp_path / "test")[1]} == {"test"}  # a split folder as root
    with pytest.raises(DataError, match="no Slakh tracks"):
        find_tracks(tmp_path / "baby" / "Track00001")


def test_nothing_usable_is_one_line_error_naming_root(slakh: Path, tmp_path: Path) -> None:
    write_slakh(tmp_path / "bad", {"train": ["Track00001", "Track00002"]})
    for t in ("Track00001", "Track00002"):
        (tmp_path / f"bad/train/{t}/metadata.yaml").write_text("- not\n- a mapping\n")
    with pytest.raises(DataError) as err:
        SlakhAdapter(tmp_path / "bad", ["piano"], SR, SlakhOptions())
    assert str(tmp_path / "bad") in str(err.value) and "bad metadata.yaml" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="no such folder"):
        SlakhAdapter(tmp_path / "nowhere", ["piano"], SR, SlakhOptions())
    with pytest.raises(DataError, match="unknown source"):
        SlakhAdapter(slakh, ["piano", "organ"], SR, SlakhOptions())


def test_class_programs_override_adds_a_class(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["organ"], SR, SlakhOptions(class_programs={"organ": list(range(16, 24))}))
    track = adapter.tracks("test")[0]
    assert [p.name for p in track.stems["organ"]] == ["S06.flac"] and len(track.notes["organ"]) == 6


def test_resample_and_downmix(tmp_path: Path) -> None:
    assert resampled_length(44101, 44100, 16000) == 16001 == len(resample(np.zeros(44101), 44100, 16000))
    left = np.sin(np.linspace(0, 200, 44101)).astype(np.float32)
    sf.write(str(tmp_path / "s.flac"), np.stack([left, np.zeros_like(left)], axis=1), 44100)
    mono = read_audio(tmp_path / "s.flac", 16000)
    assert mono.shape == (16001,) and mono.dtype == np.float32
    np.testing.assert_allclose(mono, resample_poly(left / 2, 160, 441), atol=1e-4)


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []

    def counting(path: Path, sample_rate: int) -> np.ndarray:
        calls.append(path)
        return read_audio(path, sample_rate)

    monkeypatch.setattr(base, "read_audio", counting)
    return calls


def test_cache_is_reused_and_broken_entries_are_rebuilt(slakh: Path, cache_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_decodes(monkeypatch)
    first = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions()).evaluation_dataset("test", HOP, None)[0]
    assert len(calls) == 2  # one decode per stem used
    again = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions()).evaluation_dataset("test", HOP, None)[0]
    assert len(calls) == 2 and torch.equal(first["mixture"], again["mixture"])
    entries = sorted((cache_dir / "audio").rglob("*.npy"))
    truncate(entries[0], 0.7)  # a partial array
    (entries[1].with_suffix(".json")).unlink()  # an array without its sidecar
    (entries[1].parent / ".tmp-1-x-guitar.npy").write_bytes(b"junk")  # a crashed writer's leftover
    rebuilt = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions()).evaluation_dataset("test", HOP, None)[0]
    assert len(calls) == 4 and torch.equal(first["mixture"], rebuilt["mixture"])


def test_cache_follows_changed_stem_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_slakh(tmp_path / "d", {"test": ["Track01876"]})
    make = lambda: SlakhAdapter(root, ["piano"], SR, SlakhOptions()).evaluation_dataset("test", HOP, None)[0]  # noqa: E731
    before = make()["sources"][0]
    audio, sr = sf.read(str(root / "test/Track01876/stems/S00.flac"), dtype="float32")
    sf.write(str(root / "test/Track01876/stems/S00.flac"), audio * 0.5, sr)
    after = make()["sources"][0]
    np.testing.assert_allclose(after.numpy(), before.numpy() * 0.5, atol=2e-4)


def test_mstt_data_json(slakh: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from mstt import cli, plugins

    assert "mstt.data.adapters" in plugins.BUILTIN_PLUGINS
    # Only this module's plugin, so the test does not depend on the other built-ins.
    monkeypatch.setattr(plugins, "_registry", plugins.build_registry(("mstt.data.adapters",), entry_points=False))
    assert cli.main(["data", f"slakh:{slakh}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"splits", "sources", "skipped"}
    assert set(out["splits"]) == {"train", "validation", "test"}
    assert out["splits"]["train"] == {"tracks": 2, "examples": 3, "seconds": 6.0, "frames": 2 * (1 + 48000 // 256)}
    assert set(out["sources"]) == {"piano", "guitar", "bass", "drums", "strings"}
    assert out["sources"]["guitar"] == {"tracks": 3, "seconds": 9.0}  # Track00006 is kept, without guitar
    assert out["sources"]["piano"]["tracks"] == 4
    assert {Path(s["path"]).name for s in out["skipped"]} == {"Track00002", "Track00003", "Track00004", "Track00005"}
    assert all(set(s) == {"path", "reason"} for s in out["skipped"])
    assert cli.main(["data", f"slakh:{slakh}", "--sources", "piano,bass"]) == 0
    table = capsys.readouterr().out
    # Track00002's truncated stem is a guitar: without guitar the track is usable.
    assert "train" in table and "bass" in table and "skipped: 3" in table and "Track00002" not in table.split("left out")[0]
    assert cli.main(["data", str(slakh)]) == 2
    assert "KIND:PATH" in capsys.readouterr().err


def test_mstt_data_lists_unrendered_and_unused_stems_as_information(
        slakh: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from mstt import cli, plugins

    monkeypatch.setattr(plugins, "_registry", plugins.build_registry(("mstt.data.adapters",), entry_points=False))
    assert cli.main(["data", f"slakh:{slakh}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    usable = {"Track00001", "Track00006", "Track01501", "Track01876"}  # Track00006 has no S02 and no organ
    by_reason: dict[str, set[str]] = {}
    for entry in out["left_out"]:
        assert set(entry) == {"path", "part", "reason"}
        by_reason.setdefault(entry["reason"], set()).add(f"{Path(entry['path']).name}/{entry['part']}")
    assert by_reason == {
        "audio_rendered: false in metadata.yaml": {f"{t}/S02" for t in usable - {"Track00006"}},
        "program 16 is of no class and no source 'other' takes it (mix_other_stems: false)":
            {f"{t}/S06" for t in usable - {"Track00006"}},
    }
    assert {Path(s["path"]).name for s in out["skipped"]} == {"Track00002", "Track00003", "Track00004", "Track00005"}
    # Piano and guitar only: bass, drums and strings are left out too, by class; the table groups them.
    assert cli.main(["data", f"slakh:{slakh}", "--sources", "piano,guitar"]) == 0
    table = capsys.readouterr().out
    assert "left out (information, not errors):" in table
    assert "x class bass is not among the sources" in table and "x audio_rendered: false in metadata.yaml" in table
    assert "Track00001/S02" in table


def test_skipped_tracks_know_their_split(slakh: Path) -> None:
    adapter = SlakhAdapter(slakh, ["piano", "guitar"], SR, SlakhOptions())
    assert {Path(s["path"]).name for s in adapter.skipped_in("train")} == {
        "Track00002", "Track00003", "Track00004", "Track00005", "Track00006"}
    assert adapter.skipped_in("test") == []


def test_truncated_wav_stem_is_skipped_with_its_reason(tmp_path) -> None:
    """libsndfile reads a cut-short wav as a shorter file; the header check names it."""
    import soundfile as sf

    from mstt.data.audio import AudioError, probe

    path = tmp_path / "S00.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated: header says 16000 frames"):
        probe(path)
