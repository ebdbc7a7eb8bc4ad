"""benchmarks/onset_decoding.py: a checkpoint evaluated with and without its head's note decoder."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import mstt.evaluate.core as core
from tests.test_ablation import pop_set, tiny_checkpoint  # noqa: F401  (fixtures)

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "onset_decoding.py"
spec = importlib.util.spec_from_file_location("onset_decoding", SCRIPT)
onset_decoding = importlib.util.module_from_spec(spec)
sys.modules["onset_decoding"] = onset_decoding
spec.loader.exec_module(onset_decoding)


def test_both_evaluations_are_written_and_the_decoder_is_put_back(tmp_path, tiny_checkpoint, pop_set):  # noqa: F811
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
    assert code == 0 and len(seen) == 1  # the first pass used the decoder lookup, the second did not
    row = json.loads((tmp_path / "cmp" / "onset_decoding.json").read_text())["rows"][0]
    # A Cerberus has no decoding head: the two passes decode the same roll the same way.
    assert row["with_decoder"] == row["without_decoder"] and "onset" in row["with_decoder"]["piano"]
    assert (tmp_path / "cmp" / "0-with-decoder" / "metrics.json").is_file()
    assert (tmp_path / "cmp" / "0-without-decoder" / "metrics.json").is_file()


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert onset_decoding.main(["--out", str(tmp_path / "cmp"), str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no checkpoint" in err and "nope.pt" in err
