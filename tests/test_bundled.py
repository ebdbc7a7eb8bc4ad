"""Models addressed by name: the manifest ``mstt export --bundle`` writes, the ``models`` hook, checksums, lookup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mstt
from mstt.bundled import file_sha256, read_manifest, resolve_model
from mstt.cli import main
from mstt.errors import MsttError, RegistryError
from mstt.plugins import build_registry, get_registry
from tests.test_inference import tones


def one_error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("mstt: error: ")
    return line


def test_export_bundle_records_the_file_and_its_sha256(tiny_export):
    entry = read_manifest(tiny_export)["default"]
    path = tiny_export / "default.pt"
    assert entry["file"] == "default.pt" and entry["sha256"] == file_sha256(path) and entry["bytes"] == path.stat().st_size
    assert (entry["description"], entry["sources"], entry["step"], entry["half"]) == ("tiny test model", ["piano", "guitar"], 2, True)
    data = torch.load(path, weights_only=True)
    # Inference reads the masks, never the deep clustering embedding: the export leaves that head out.
    assert data["dropped_heads"] == ["dc"] and not any(k.startswith("heads.dc.") for k in data["model"])
    assert data["recipe"]["model"]["heads"]["dc"]["weight"] == 0


def test_models_command_lists_the_bundled_model(bundled, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert header.split() == ["name", "size", "sources", "from", "description"]
    assert row.split()[:5] == ["default", f"{(bundled / 'default.pt').stat().st_size / 1e6:.1f}", "MB", "piano,guitar", "builtin"]
    assert row.endswith("tiny test model") and f"default: {bundled / 'default.pt'}" in out
    assert main(["models", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["name"], listed["plugin"], listed["sources"]) == ("default", "builtin", ["piano", "guitar"])
    assert main(["plugins", "--json"]) == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out)["models"]] == ["default"]


def test_load_without_a_name_is_the_default(bundled):
    x = tones(1.0, 8000)
    by_default = mstt.load(device="cpu").separate(x, 8000)
    by_name = mstt.load("default", device="cpu").separate(x, 8000)
    by_path = mstt.load(bundled / "default.pt", device="cpu").separate(x, 8000)
    assert list(by_default.stems) == ["piano", "guitar"]
    for name in by_default.stems:
        np.testing.assert_array_equal(by_default.stems[name], by_path.stems[name])
        np.testing.assert_array_equal(by_name.stems[name], by_path.stems[name])


def test_separate_with_no_checkpoint_uses_the_default(bundled, tmp_path, capsys):
    import soundfile as sf

    song = tmp_path / "song.wav"
    sf.write(song, tones(1.0, 16000), 16000)
    assert main(["separate", str(song), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "a" / "song").iterdir()) == ["guitar.wav", "piano.wav", "pianoroll.png", "song.mid"]
    assert main(["separate", "--model", "default", str(song), "--out", str(tmp_path / "b"), "--quiet", "--html"]) == 0
    assert "separated by default" in (tmp_path / "b" / "song" / "report.html").read_text()
    # The old form, a checkpoint first, still works; so does an exported file under another name (read by content).
    renamed = tmp_path / "model.bin"
    renamed.write_bytes((bundled / "default.pt").read_bytes())
    for first in (bundled / "default.pt", renamed):
        assert main(["separate", str(first), str(song), "--out", str(tmp_path / first.suffix[1:]), "--quiet"]) == 0
        assert (tmp_path / first.suffix[1:] / "song" / "piano.wav").is_file()


def test_separate_model_given_twice_or_without_audio(bundled, tmp_path, capsys):
    model = str(bundled / "default.pt")
    assert main(["separate", "--model", "default", model, "song.wav"]) == 2
    assert "the model is given twice" in one_error_line(capsys)
    assert main(["separate", model]) == 2
    assert "is a model; name the recordings after it" in one_error_line(capsys)


def test_unknown_model_name_lists_the_bundled_ones(bundled, tmp_path, capsys):
    song = tmp_path / "song.wav"
    song.write_bytes(b"")
    assert main(["separate", "--model", "defualt", str(song), "--out", str(tmp_path)]) == 2
    assert one_error_line(capsys) == ("mstt: error: --model defualt: no such checkpoint and no bundled model of that name; "
                                      "bundled models: default (mstt models lists them)")
    assert main(["separate", "--model", "gone/best.pt", str(song), "--out", str(tmp_path)]) == 2
    assert "--model gone/best.pt: no such checkpoint; bundled models: default" in one_error_line(capsys)
    with pytest.raises(MsttError, match="nosuch: no such checkpoint and no bundled model of that name"):
        mstt.load("nosuch")


def test_without_a_default_model_one_line_says_how_to_pass_a_checkpoint(no_bundled, tmp_path, capsys):
    song = tmp_path / "song.wav"
    song.write_bytes(b"")
    assert main(["separate", str(song), "--out", str(tmp_path)]) == 2
    assert one_error_line(capsys) == (
        "mstt: error: no model named 'default' is installed (no bundled models are installed); "
        "pass one: mstt separate --model runs/NAME/checkpoints/best.pt AUDIO...")
    with pytest.raises(MsttError, match=r"no model named 'default' is installed .*mstt.load\(\"runs/NAME"):
        mstt.load()
    assert main(["eval", "default"]) == 2
    assert "no model named 'default' is installed" in one_error_line(capsys)
    assert main(["models"]) == 0
    assert "no models are installed; bundle one with: mstt export --half" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["flip", "missing"])
def test_a_damaged_bundled_file_says_to_reinstall(bundled, tmp_path, capsys, damage):
    path = bundled / "default.pt"
    if damage == "flip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    song = tmp_path / "song.wav"
    song.write_bytes(b"")
    assert main(["separate", str(song), "--out", str(tmp_path)]) == 2
    line = one_error_line(capsys)
    reason = "does not match the checksum recorded when it was exported" if damage == "flip" else "is missing"
    assert line.startswith(f"mstt: error: model 'default': {path} {reason}" if damage == "flip"
                           else f"mstt: error: model 'default': its file {path} is missing")
    assert reason in line
    assert "the installation is damaged; reinstall mstt (pip install --force-reinstall mstt" in line


def test_eval_by_name_writes_beside_the_working_folder(bundled, tmp_path, monkeypatch, capsys):
    from tests.data.fixtures import write_slakh

    root = write_slakh(tmp_path / "slakh", {"test": ["Track01876"]}, sample_rate=8000, seconds=1.0)
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "default", "--data", f"slakh:{root}", "--max-examples", "1"]) == 0
    metrics = json.loads((tmp_path / "eval-default-slakh-test" / "metrics.json").read_text())
    assert metrics["n_examples"] == 1 and list(metrics["separation"]) == ["piano", "guitar", "mean"]
    assert not (bundled / "eval-slakh-test").exists()  # nothing written into the package's folder


PLUGIN = """
from pathlib import Path
from mstt import hookimpl
from mstt.bundled import register_manifest

@hookimpl
def mstt_register_models(register):
    register_manifest(register, Path({folder!r}))
"""


def test_a_plugin_registers_models_and_its_damage_names_it(tiny_export, no_bundled, make_plugin, tmp_path, capsys):
    import shutil

    folder = tmp_path / "plugin-models"
    shutil.copytree(tiny_export, folder)
    manifest = json.loads((folder / "models.json").read_text())
    manifest["models"] = {"band": manifest["models"]["default"]}
    (folder / "models.json").write_text(json.dumps(manifest))
    make_plugin("mstt-band", "mstt_band", PLUGIN.format(folder=str(folder)))
    assert resolve_model("band") == (folder / "default.pt", "band")
    assert [(c.name, c.plugin) for c in get_registry().components("models")] == [("band", "mstt-band")]
    (folder / "default.pt").write_bytes(b"PK\x03\x04 not the exported file")
    with pytest.raises(MsttError, match=r"reinstall mstt-band \(pip install --force-reinstall mstt-band\)$"):
        resolve_model("band")


BAD_SHA = """
from mstt import hookimpl

@hookimpl
def mstt_register_models(register):
    register("odd", "odd.pt", sha256="abc")
"""


def test_a_registration_without_a_valid_sha256_is_a_plugin_error(make_plugin, no_bundled):
    make_plugin("mstt-odd", "mstt_odd", BAD_SHA)
    registry = build_registry()
    assert "odd" not in registry.names("models")
    assert "sha256='abc'; pass the file's sha256 as 64 lower-case hex digits" in registry.errors[0]["error"]


def test_a_damaged_manifest_is_one_line(tmp_path):
    (tmp_path / "models.json").write_text("{not json")
    with pytest.raises(RegistryError, match=r"models.json: is damaged \(not readable JSON"):
        read_manifest(tmp_path)
    (tmp_path / "models.json").write_text(json.dumps({"format": "mstt-models", "format_version": 1, "models": {"x": {}}}))
    with pytest.raises(RegistryError, match="model 'x' has no 'file'"):
        read_manifest(tmp_path)


def test_bundle_name_and_file_are_checked_before_exporting(tmp_path, capsys):
    assert main(["export", "ck.pt", str(tmp_path / "Big.pt"), "--bundle", "Big"]) == 2
    assert "--bundle Big: model names are lower-case" in one_error_line(capsys)
    assert main(["export", "ck.pt", str(tmp_path / "x.onnx"), "--bundle", "x"]) == 2
    assert "a bundled model's file ends in .pt" in one_error_line(capsys)
    assert main(["export", "ck.pt", str(tmp_path / "x.pt"), "--description", "words"]) == 2
    assert "--description goes with --bundle NAME" in one_error_line(capsys)


def test_the_models_in_the_package_match_their_manifest():
    """Every model mstt ships: its file is there, its checksum and size are the recorded ones, it fits a wheel."""
    folder = Path(mstt.__file__).parent / "models"
    manifest = read_manifest(folder)
    assert "default" in manifest
    for name, entry in manifest.items():
        path = folder / entry["file"]
        assert path.is_file(), f"{name}: {path} missing"
        assert (entry["sha256"], entry["bytes"]) == (file_sha256(path), path.stat().st_size), name
        assert entry["bytes"] <= 30e6, f"{name}: {entry['bytes']} bytes, over the 30 MB a bundled model may take"
        assert entry["half"], f"{name}: bundled models are half-precision exports"
