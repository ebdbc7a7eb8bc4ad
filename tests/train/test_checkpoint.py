"""Checkpoints: atomic writes, weights_only loading, RNG round trips, recipe comparison."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from test_loop import run, tiny_config

import mstt
from mstt.errors import MsttError
from mstt.recipe import recipe_from_dict, to_yaml
from mstt.train import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, load_checkpoint
from mstt.train.checkpoint import (
    clean_state_dict,
    recipe_difference,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def test_checkpoint_loads_with_weights_only_and_holds_everything(tmp_path):
    config = tiny_config()
    result = run(config, tmp_path)
    raw = torch.load(result.last_path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT == "mstt-checkpoint" and raw["format_version"] == CHECKPOINT_FORMAT_VERSION == 1
    assert raw["mstt_version"] == mstt.__version__ and raw["plugins"]["builtin"] == mstt.__version__
    assert raw["step"] == 10 and raw["finished"] is True and raw["stopped"] == "max_steps"
    assert raw["best"]["metric"] == "loss" and raw["best"]["step"] in (5, 10)
    assert [r["step"] for r in raw["history"]] == [5, 10]
    assert set(raw["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert raw["optimizer"]["state"] and "best" in raw["scheduler"]  # plateau state
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in raw["model"])
    # The saved recipe rebuilds the same typed config, and recipe.yaml is its YAML.
    assert to_yaml(recipe_from_dict(raw["recipe"])) == to_yaml(config)
    assert (tmp_path / "recipe.yaml").read_text() == to_yaml(config)
    assert torch.load(result.best_path, weights_only=True)["step"] == raw["best"]["step"]


def test_crash_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint({"format": CHECKPOINT_FORMAT, "format_version": 1, "step": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()

    def torn(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # partial data, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", torn)
    with pytest.raises(MsttError, match=rf"^no space left on device writing {path}; free space or choose another --out "
                                        r"\(the previous checkpoint is intact\)$"):
        save_checkpoint({"format": CHECKPOINT_FORMAT, "format_version": 1, "step": 2}, path)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temp file left


def test_failed_save_during_training_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    run(tiny_config("trainer.max_steps=5"), tmp_path)
    last = tmp_path / "checkpoints" / "last.pt"
    before = last.read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(MsttError, match=r"no space left on device writing .*checkpoints/(best|last).pt"):
        run(tiny_config("trainer.max_steps=10"), tmp_path)
    assert last.read_bytes() == before


def test_a_full_disk_behind_a_torch_error_and_a_denied_write_are_named(tmp_path, monkeypatch):
    import errno
    import os
    from types import SimpleNamespace

    path = tmp_path / "best.pt"
    save_checkpoint({"format": CHECKPOINT_FORMAT, "format_version": 1, "step": 3}, path)

    def torch_error(obj, f, *args, **kwargs):  # torch's zip writer hides the errno in a RuntimeError
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(torch, "save", torch_error)
    monkeypatch.setattr(os, "statvfs", lambda d: SimpleNamespace(f_bavail=0, f_frsize=4096))
    with pytest.raises(MsttError, match="^no space left on device writing .*best.pt; free space or choose another --out"):
        save_checkpoint({"step": 4}, path)
    monkeypatch.setattr(os, "statvfs", lambda d: SimpleNamespace(f_bavail=10**9, f_frsize=4096))
    with pytest.raises(MsttError, match=r"best.pt: could not write \(\[enforce fail"):
        save_checkpoint({"step": 4}, path)

    def denied(obj, f, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(torch, "save", denied)
    with pytest.raises(MsttError, match="^permission denied writing .*best.pt; choose a writable --out"):
        save_checkpoint({"step": 4}, path)
    assert load_checkpoint(path)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_interrupt_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    save_checkpoint({"format": CHECKPOINT_FORMAT, "format_version": 1, "step": 3}, path)

    def killed(obj, f, *args, **kwargs):
        f.write(b"garbage")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 4}, path)
    assert load_checkpoint(path)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_unreadable_or_foreign_files_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(MsttError, match="junk.pt is not a torch checkpoint"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(MsttError, match="foreign.pt: not an mstt checkpoint"):
        load_checkpoint(foreign)
    newer = tmp_path / "newer.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "format_version": 99}, newer)
    with pytest.raises(MsttError, match="format_version 99 is newer"):
        load_checkpoint(newer)
    with pytest.raises(MsttError, match="missing.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_corrupt_last_checkpoint_stops_resume_with_its_name(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(MsttError, match="last.pt is not a torch checkpoint"):
        run(tiny_config(), tmp_path)


def test_rng_state_round_trips_through_weights_only(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.normal()  # leaves a cached gaussian in the numpy state
    save_checkpoint({"rng": rng_state()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    got = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    torch.testing.assert_close(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2:] == expected[2:]


def test_clean_state_dict_drops_ddp_and_compile_prefixes():
    w = torch.zeros(1)
    cleaned = clean_state_dict({"module._orig_mod.encoder.w": w, "_orig_mod.heads.tr.b": w, "plain": w})
    assert list(cleaned) == ["encoder.w", "heads.tr.b", "plain"]


def test_recipe_difference_ignores_budgets_and_eval():
    saved = {"optim": {"lr": 0.1}, "trainer": {"max_steps": 10, "device": "cpu", "batch_size": 8}, "eval": {"split": "test"}}
    same = {"optim": {"lr": 0.1}, "trainer": {"max_steps": 99, "device": "cuda", "batch_size": 8}, "eval": {"split": "validation"}}
    assert recipe_difference(saved, same) is None
    other = {"optim": {"lr": 0.1}, "trainer": {"max_steps": 10, "device": "cpu", "batch_size": 4}, "eval": {"split": "test"}}
    assert recipe_difference(saved, other) == ("trainer.batch_size", 8, 4)
    extra = {**saved, "model": {"heads": {"tr": {"weight": 1.0}}}}
    assert recipe_difference(saved, extra) == ("model.heads.tr.weight", None, 1.0)


def test_a_run_saved_before_precision_and_train_frames_existed_still_resumes():
    # Recipes saved by older versions lack these keys; they change numerics, not the weights.
    saved = {
        "trainer": {"amp": True, "batch_size": 8},
        "model": {"encoder": {"options": {"hidden_size": 128}}, "heads": {"dc": {"weight": 0.1}}},
    }
    now = {
        "trainer": {"amp": True, "precision": "auto", "batch_size": 8},
        "model": {
            "encoder": {"options": {"hidden_size": 128, "fp32": True}},
            "heads": {"dc": {"weight": 0.1, "train_frames": 0.25}},
        },
    }
    assert recipe_difference(saved, now) is None
    assert recipe_difference(saved, {**now, "trainer": {**now["trainer"], "batch_size": 4}})[0] == "trainer.batch_size"


def test_random_bytes_plain_pickles_and_truncations_say_what_they_are(tmp_path, recwarn):
    import os
    import pickle

    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)))
    old = tmp_path / "old.pt"
    old.write_bytes(pickle.dumps({"model": {}}, protocol=2))
    code = tmp_path / "code.pt"  # a pickle that would run a command when unpickled without weights_only
    code.write_bytes(pickle.dumps(_Shell(), protocol=4))
    for path in (noise, old, code):
        with pytest.raises(MsttError, match=rf"^{path} is not a torch checkpoint; pass a checkpoints/\*.pt"):
            load_checkpoint(path)
    good = tmp_path / "good.pt"
    save_checkpoint({"format": CHECKPOINT_FORMAT, "format_version": 1, "model": {"w": torch.zeros(64, 64)}}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(MsttError, match=r"cut.pt: not a readable mstt checkpoint \(it is truncated or damaged\)"):
        load_checkpoint(cut)
    assert not [w for w in recwarn.list if "torch" in str(w.filename) or "pickle" in str(w.message)]


class _Shell:
    def __reduce__(self):
        return (os_system, ("touch /tmp/mstt-test-pwned",))


def os_system(command: str) -> int:  # stands in for os.system: never to be called
    raise AssertionError(f"unpickling ran {command}")
