"""benchmarks/onset_decoding.py: a checkpoint evaluated with its head's note decoder, each onset rule, and the frame roll alone."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

import mstt.evaluate.core as core
from mstt.decode import NoteDecoding
from tests.test_ablation import pop_set, tiny_checkpoint  # noqa: F401  (fixtures)

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "onset_decoding.py"
spec = importlib.util.spec_from_file_location("onset_decoding", SCRIPT)
onset_decoding = importlib.util.module_from_spec(spec)
sys.modules["onset_decoding"] = onset_decoding
spec.loader.exec_module(onset_decoding)


def test_every_way_is_written_and_the_decoder_is_put_back(tmp_path, tiny_checkpoint, pop_set):  # noqa: F811
    run = tmp_path / "run" / "checkpoints"
    run.mkdir(parents=True)
    checkpoint = run / "best.pt"
    shutil.copy(tiny_checkpoint, checkpoint)
    seen = []
    original = core.note_decoder

    def spy(model):
        seen.append(model)
        return original(model)

    core.note_decoder = spy
    try:
        code = onset_decoding.main(["--out", str(tmp_path / "cmp"), "--data", f"slakh:{pop_set}",
                                    "--data-option", "require_all_sources=false", str(checkpoint)])
        assert core.note_decoder is spy  # what was there before is restored
    finally:
        core.note_decoder = original
    assert code == 0 and len(seen) == 1  # only the "head" pass used the decoder lookup in place
    row = json.loads((tmp_path / "cmp" / "onset_decoding.json").read_text())["rows"][0]
    # A Cerberus has no decoding head: every pass decodes the same roll the same way.
    assert "onset" in row["head"]["piano"]
    assert row["head"] == row["split"] == row["gated"] == row["frames"]
    for way in onset_decoding.WAYS:
        assert (tmp_path / "cmp" / f"0-{way}" / "metrics.json").is_file()


def test_the_onset_rules_differ_only_where_a_run_starts_without_an_onset():
    model = SimpleNamespace(specs={"onset": SimpleNamespace(output="onset", decode=object())})
    roll, onsets = torch.zeros(1, 88, 40), torch.zeros(1, 88, 40)
    roll[0, 39, 5:30] = 1.0  # a run whose start has no detected onset...
    onsets[0, 39, 18] = 1.0  # ...and one onset inside it
    roll[0, 50, 3:9] = onsets[0, 50, 3] = 1.0  # a run that starts on an onset
    decoding = NoteDecoding(0.4, None, 2)
    ways = onset_decoding.decoders(head=None)
    split_output, split = ways["split"](model)
    gated_output, gated = ways["gated"](model)
    assert split_output == gated_output == "onset"
    assert ways["frames"](model) is None and ways["head"] is None
    split_notes, gated_notes = split(roll, onsets, 10.0, decoding)[0], gated(roll, onsets, 10.0, decoding)[0]
    assert [(n[0], n[2]) for n in split_notes] == [(0.3, 71.0), (0.5, 60.0), (1.8, 60.0)]
    assert [(n[0], n[2]) for n in gated_notes] == [(0.3, 71.0), (1.8, 60.0)]  # the un-onset start is dropped
    assert onset_decoding.onset_rule_decoder(False)(SimpleNamespace(specs={})) is None


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert onset_decoding.main(["--out", str(tmp_path / "cmp"), str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no checkpoint" in err and "nope.pt" in err
