"""``mstt separate``: outputs per recording, many files per call, and one line per bad input."""

from __future__ import annotations

import mido
import numpy as np
import pytest
import soundfile as sf

from mstt.cli import main
from tests.test_inference import checkpoint, make_checkpoint, tones  # noqa: F401  (fixtures)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["separate", *args, "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_flac_at_44k_gives_stems_midi_and_png_at_its_rate(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "set3.pt", name="cerberus_set3")
    song = tmp_path / "Track00001.flac"
    x = tones(2.5, 44100)
    sf.write(song, x, 44100)
    code, out, err = run_cli(capsys, str(ckpt), str(song), "--out", str(tmp_path / "out"), "--chunk-seconds", "1")
    assert code == 0, err
    folder = tmp_path / "out" / "Track00001"
    assert sorted(p.name for p in folder.iterdir()) == [
        "Track00001.mid", "bass.wav", "drums.wav", "guitar.wav", "piano.wav", "pianoroll.png"]
    for name in ("piano", "guitar", "bass", "drums"):
        info = sf.info(folder / f"{name}.wav")
        assert (info.samplerate, info.frames, info.channels) == (44100, len(x), 1)
    # mido, not pretty_midi: pretty_midi drops a track without notes when it reads a file.
    tracks = [(t.name, [(m.channel, m.program) for m in t if m.type == "program_change"])
              for t in mido.MidiFile(folder / "Track00001.mid").tracks if t.name]
    assert tracks == [("piano", [(0, 0)]), ("guitar", [(1, 25)]), ("bass", [(2, 33)]), ("drums", [(9, 0)])]
    assert (folder / "pianoroll.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "resampled 44100 Hz" in out and f"wrote {folder}/" in out
    assert not list((tmp_path / "out").glob(".*partial*"))


def test_bad_inputs_are_named_and_the_good_ones_still_processed(tmp_path, capsys, checkpoint):  # noqa: F811
    files = {
        "empty.wav": "the file is empty",
        "text.wav": "not an audio file libsndfile can read",
        "zero.wav": "zero-length recording",
        "silent.wav": "is silent",
        "nan.wav": "NaN or infinite samples",
        "missing.wav": "no such file",
    }
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio\n")
    sf.write(tmp_path / "zero.wav", np.zeros(0), 16000)
    sf.write(tmp_path / "silent.wav", np.zeros(16000), 16000)
    bad = tones(1.0, 16000)
    bad[500] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    # A 6-channel 96 kHz recording of 1 s (shorter than a chunk) is fine: downmixed and resampled.
    sf.write(tmp_path / "six.wav", np.tile(tones(1.0, 96000)[:, None], (1, 6)) / 2, 96000)
    sf.write(tmp_path / "good.ogg", tones(1.5, 22050), 22050, format="OGG", subtype="VORBIS")
    names = ["empty.wav", "text.wav", "six.wav", "zero.wav", "silent.wav", "nan.wav", "missing.wav", "good.ogg"]
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, str(checkpoint), *[str(tmp_path / n) for n in names], "--out", str(out_dir))
    assert code == 1
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.startswith("mstt: error:")]
    assert len(lines) == len(files)
    for name, reason in files.items():
        (line,) = [line for line in lines if f"{tmp_path / name}:" in line]
        assert reason in line
    assert f"{len(files)} of {len(names)} files failed" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["good", "six"]
    assert "downmixed 6 channels to mono" in out
    assert sf.info(out_dir / "six" / "piano.wav").samplerate == 96000
    assert sf.info(out_dir / "good" / "guitar.wav").frames == int(1.5 * 22050)


@pytest.mark.parametrize("under", ["", "out"])
def test_an_output_folder_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, checkpoint, under, monkeypatch):  # noqa: F811
    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 8000), 8000)
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder cannot be made under a file, even by root
    monkeypatch.setattr("mstt.inference.load", lambda *a: pytest.fail("loaded the model"))
    code, out, err = run_cli(capsys, str(checkpoint), str(song), "--out", str(blocker / under))
    (line,) = err.strip().splitlines()
    assert code == 2 and line.startswith(f"mstt: error: --out {blocker / under}".rstrip("/")) and "is a file" in line


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path, capsys, checkpoint, monkeypatch):  # noqa: F811
    import os

    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 8000), 8000)
    (tmp_path / "ro").mkdir()
    real = os.access  # root may write anywhere: pretend the folder is read-only
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path / "ro") else real(p, mode))
    code, out, err = run_cli(capsys, str(checkpoint), str(song), "--out", str(tmp_path / "ro" / "sep"))
    (line,) = err.strip().splitlines()
    assert code == 2 and f"{tmp_path / 'ro'} is not writable; choose a writable --out" in line


def test_a_full_disk_while_writing_stems_keeps_the_previous_ones_and_names_the_file(tmp_path, capsys, checkpoint, monkeypatch):  # noqa: F811
    import os
    from types import SimpleNamespace

    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 8000), 8000)
    out_dir = tmp_path / "sep"
    assert run_cli(capsys, str(checkpoint), str(song), "--out", str(out_dir))[0] == 0
    before = {p.name: p.read_bytes() for p in (out_dir / "song").iterdir()}
    real_write = sf.SoundFile.write

    def full(self, data):  # libsndfile reports a full disk as "System error." without an errno
        if self.mode == "w":
            raise sf.LibsndfileError(2, "Error writing: ")
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", full)
    monkeypatch.setattr(os, "statvfs", lambda d: SimpleNamespace(f_bavail=0, f_frsize=4096))
    code, out, err = run_cli(capsys, str(checkpoint), str(song), "--out", str(out_dir))
    lines = [line for line in err.strip().splitlines() if line.startswith("mstt: error")]
    assert code == 1 and len(lines) == 1
    assert f"no space left on device writing {out_dir / 'song'}/" in lines[0] and "choose another --out" in lines[0]
    assert {p.name: p.read_bytes() for p in (out_dir / "song").iterdir()} == before
    assert not list(out_dir.glob(".*partial*"))


def test_not_a_checkpoint_is_a_usage_error(tmp_path, capsys):
    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 8000), 8000)
    fake = tmp_path / "best.pt"
    fake.write_text("not a checkpoint")
    code, out, err = run_cli(capsys, str(fake), str(song), "--out", str(tmp_path / "out"))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith(f"mstt: error: {fake} is not a torch checkpoint;")
    assert not (tmp_path / "out").exists()


def test_outputs_option_and_same_named_inputs(tmp_path, capsys, checkpoint):  # noqa: F811
    for suffix in ("wav", "flac"):
        sf.write(tmp_path / f"song.{suffix}", tones(1.0, 8000), 8000)
    code, _, err = run_cli(capsys, str(checkpoint), str(tmp_path / "song.wav"), str(tmp_path / "song.flac"),
                           "--out", str(tmp_path / "out"), "--outputs", "midi")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["song-flac", "song-wav"]
    assert [p.name for p in (tmp_path / "out" / "song-wav").iterdir()] == ["song-wav.mid"]
    for track in ("Track00001", "Track00002"):  # Slakh: every mixture is mix.flac
        (tmp_path / track).mkdir()
        sf.write(tmp_path / track / "mix.flac", tones(1.0, 8000), 8000)
    mixes = [str(tmp_path / t / "mix.flac") for t in ("Track00001", "Track00002")]
    code, _, err = run_cli(capsys, str(checkpoint), *mixes, mixes[0], "--out", str(tmp_path / "slakh"), "--outputs", "midi")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "slakh").iterdir()) == [
        "Track00001-mix-flac-1", "Track00001-mix-flac-2", "Track00002-mix"]
    code, _, err = run_cli(capsys, str(checkpoint), str(tmp_path / "song.wav"), "--outputs", "stems,video")
    assert code == 2 and "--outputs stems,video: choose from stems, midi, png" in err


def test_rerun_replaces_outputs_in_place(tmp_path, capsys, checkpoint):  # noqa: F811
    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 8000), 8000)
    (tmp_path / "out" / "song").mkdir(parents=True)
    (tmp_path / "out" / "song" / "mine.txt").write_text("kept")
    for threshold in ("0.5", "0.9"):
        code, _, err = run_cli(capsys, str(checkpoint), str(song), "--out", str(tmp_path / "out"), "--threshold", threshold)
        assert code == 0, err
    assert (tmp_path / "out" / "song" / "mine.txt").read_text() == "kept"
    assert (tmp_path / "out" / "song" / "piano.wav").is_file()


@pytest.mark.parametrize("bad", [["--chunk-seconds", "0"], ["--overlap-seconds", "-1"]])
def test_bad_chunk_options(tmp_path, capsys, checkpoint, bad):  # noqa: F811
    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 8000), 8000)
    code, _, err = run_cli(capsys, str(checkpoint), str(song), *bad)
    assert code == 2 and "--chunk-seconds must be above 0" in err


def test_a_gpu_asked_for_where_there_is_none(tmp_path, capsys, checkpoint, monkeypatch):  # noqa: F811
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 8000), 8000)
    code, _, err = run_cli(capsys, str(checkpoint), str(song), "--device", "cuda")
    assert code == 2 and err.strip() == "mstt: error: device cuda: no GPU is visible; use cpu or auto"
