"""The shared evaluation: oracle models of every kind, the metrics.json schema, silence, chunking."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from mstt.data.synth import synthesize
from mstt.decode import NoteDecoding
from mstt.evaluate import infer, run_evaluation, write_metrics
from mstt.evaluate.inference import chunk_bounds
from mstt.features import FrontEnd
from mstt.plugins import get_registry
from mstt.recipe import component_options, load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SR, N_FFT, HOP = 8000, 256, 64
SOURCES = ["piano", "guitar", "drums"]
PRF = {"precision", "recall", "f1"}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    """3 tracks x 4 s at 8 kHz (one per split), rendered once for the module."""
    root = tmp_path_factory.mktemp("synth") / "set"
    synthesize(root, SOURCES, tracks=3, seconds=4.0, seed=0, sample_rate=SR, jobs=1, progress=False)
    return root


def tiny_config(*overrides: str):
    """A recipe on the tiny set; the model is never built from it, only its eval settings are read."""
    return load_recipe(
        [RECIPES / "cerberus_set1.yaml"],
        [
            f"data.sources=[{','.join(SOURCES)}]",
            f"data.sample_rate={SR}",
            f"features.n_fft={N_FFT}",
            f"features.hop_length={HOP}",
            "eval.min_note_frames=1",  # drum hits are one frame long on the reference roll
            "trainer.num_workers=0",
            *overrides,
        ],
    )


@pytest.fixture
def test_set(synth_root):
    """The test split in 2-second windows (2 examples)."""
    config = tiny_config()
    component = get_registry().get("datasets", "synth")
    options = component_options(component.options, config.data.options, "data.options")
    adapter = component.factory(str(synth_root), SOURCES, SR, options)
    return adapter.evaluation_dataset("test", HOP, 2.0)


class ListSet(Dataset):
    """Items held in a list (for edited copies of dataset items)."""

    def __init__(self, items: list[dict]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


class Oracle(nn.Module):
    """A fake model that looks each mixture up and returns oracle outputs of the asked kinds.

    kinds: "psa" (phase-sensitive masks), "ibm" (binary masks of the dominant source),
    "dc" (one-hot embeddings of the dominant source in reversed source order), "roll" (logits of
    the reference roll), "stems" (the reference waveforms, as a whole-waveform separator).
    """

    def __init__(self, dataset: Dataset, kinds: set[str], reverse_stems: bool = False) -> None:
        super().__init__()
        self.front_end = FrontEnd(N_FFT, HOP, "hann", "log", "utterance")
        self.sources, self.sample_rate, self.kinds = list(SOURCES), SR, kinds
        self.permutation_invariant = reverse_stems
        self.reverse_stems = reverse_stems
        self.table = {}
        for i in range(len(dataset)):
            item = dataset[i]
            self.table[item["mixture"].numpy().tobytes()] = (item["sources"], item["roll"])

    def forward(self, mixture: torch.Tensor):
        found = [self.table[m.numpy().tobytes()] for m in mixture]
        sources = torch.stack([f[0] for f in found])  # (B, S, N)
        if self.kinds == {"stems"}:
            return sources.flip(1) if self.reverse_stems else sources
        spec, magnitude, _ = self.front_end(mixture)
        source_spec = self.front_end.stft(sources)  # (B, S, F, T)
        out = {"spec": spec, "magnitude": magnitude}
        dominant = source_spec.abs().argmax(1)  # (B, F, T)
        if "psa" in self.kinds:
            cross = (source_spec * spec.unsqueeze(1).conj()).real
            out["mask"] = (cross / spec.abs().pow(2).unsqueeze(1).clamp_min(1e-12)).clamp(0, 1)
        if "ibm" in self.kinds:
            out["mask"] = nn.functional.one_hot(dominant, len(SOURCES)).permute(0, 3, 1, 2).float()
        if "dc" in self.kinds:
            out["embedding"] = nn.functional.one_hot(len(SOURCES) - 1 - dominant, 4).float()
        if "roll" in self.kinds:
            out["roll"] = torch.stack([f[1] for f in found]) * 20 - 10
        return out

    def activated(self, outputs: dict) -> dict:
        result = dict(outputs)
        if "roll" in result:
            result["roll"] = torch.sigmoid(result["roll"])
        return result


def test_oracle_masks_and_rolls_score_high(test_set, tmp_path):
    result = run_evaluation(Oracle(test_set, {"psa", "roll"}), test_set, tiny_config(), progress=False)
    m = result.metrics
    sep, tr = m["separation"], m["transcription"]
    assert sep["mean"]["si_sdri"] > 10
    assert all(sep[s]["si_sdri"] > 5 for s in SOURCES)
    for source in SOURCES + ["mean"]:
        assert tr[source]["frame"]["f1"] > 0.95
        assert tr[source]["onset"]["f1"] > 0.9
    assert tr["piano"]["onset_offset"]["f1"] > 0.9
    # The mixture's SI-SDR is the baseline of the improvement.
    assert all(sep[s]["si_sdri"] > sep[s]["si_sdr"] for s in SOURCES)
    path = write_metrics(tmp_path / "metrics.json", m)
    assert json.loads(path.read_text()) == m


def test_metrics_schema_matches_design(test_set):
    m = run_evaluation(Oracle(test_set, {"psa", "roll"}), test_set, tiny_config(), progress=False).metrics
    assert set(m) == {"recipe", "checkpoint", "split", "n_examples", "separation", "transcription"}
    assert (m["recipe"], m["split"], m["n_examples"]) == ("cerberus_set1", "test", 2)
    assert list(m["separation"]) == SOURCES + ["mean"]
    for block in m["separation"].values():
        assert list(block) == ["si_sdr", "si_sdri", "sdr"]
    assert list(m["transcription"]) == SOURCES + ["mean"]
    for source in ("piano", "guitar", "mean"):
        assert list(m["transcription"][source]) == ["frame", "onset", "onset_offset"]
    assert list(m["transcription"]["drums"]) == ["frame", "onset"]  # drums: no offsets
    for block in m["transcription"].values():
        assert all(set(level) == PRF for level in block.values())


def test_bss_eval_adds_sir_and_sar(test_set):
    config = tiny_config("eval.bss_eval=true", "eval.max_examples=1")
    m = run_evaluation(Oracle(test_set, {"psa"}), test_set, config, progress=False).metrics
    assert list(m["separation"]["piano"]) == ["si_sdr", "si_sdri", "sdr", "sir", "sar"]
    # Oracle masks leave little of the other sources in each estimate: SIR is high.
    assert m["separation"]["mean"]["sir"] > 15 and math.isfinite(m["separation"]["mean"]["sar"])
    assert m["n_examples"] == 1


def test_absent_heads_leave_their_block_out(test_set):
    config = tiny_config()
    transcription_only = run_evaluation(Oracle(test_set, {"roll"}), test_set, config, progress=False).metrics
    assert "separation" not in transcription_only and "transcription" in transcription_only
    separation_only = run_evaluation(Oracle(test_set, {"psa"}), test_set, config, progress=False).metrics
    assert "transcription" not in separation_only and "separation" in separation_only


def test_dc_oracle_recovers_sources_whatever_the_cluster_order(test_set):
    config = tiny_config()
    dc = run_evaluation(Oracle(test_set, {"dc"}), test_set, config, progress=False).metrics["separation"]
    ibm = run_evaluation(Oracle(test_set, {"ibm"}), test_set, config, progress=False).metrics["separation"]
    # The embeddings list the sources in reverse: only a correct permutation matches the IBM scores.
    for source in SOURCES:
        assert dc[source]["si_sdr"] == pytest.approx(ibm[source]["si_sdr"], abs=0.05)
    assert dc["mean"]["si_sdri"] > 10


def test_models_with_masks_and_embeddings_use_the_masks(test_set):
    config = tiny_config()
    both = run_evaluation(Oracle(test_set, {"psa", "dc"}), test_set, config, progress=False).metrics["separation"]
    psa = run_evaluation(Oracle(test_set, {"psa"}), test_set, config, progress=False).metrics["separation"]
    assert both == psa


@pytest.mark.parametrize("reverse", [False, True])
def test_waveform_separator_fits_the_same_path(test_set, reverse):
    oracle = Oracle(test_set, {"stems"}, reverse_stems=reverse)
    m = run_evaluation(oracle, test_set, tiny_config(), progress=False).metrics
    assert set(m) == {"recipe", "checkpoint", "split", "n_examples", "separation"}
    # Perfect stems, reordered by the permutation when the separator says its order is arbitrary.
    assert all(m["separation"][s]["si_sdr"] > 60 for s in SOURCES)


def test_silent_reference_is_left_out_and_said(test_set):
    items = [test_set[i] for i in range(len(test_set))]
    items[0]["sources"][1] = 0.0  # guitar silent in the first window
    items[0]["mixture"] = items[0]["sources"].sum(0)
    edited = ListSet(items)
    result = run_evaluation(Oracle(edited, {"psa"}), edited, tiny_config(), progress=False)
    guitar = result.metrics["separation"]["guitar"]
    assert all(math.isfinite(v) for v in guitar.values())
    alone = run_evaluation(Oracle(edited, {"psa"}), ListSet(items[1:]), tiny_config(), progress=False)
    assert guitar == alone.metrics["separation"]["guitar"]  # the silent row counted nowhere
    assert result.notes == ["guitar: 1 of 2 examples have a silent reference; left out of its separation averages"]


def test_a_source_alone_in_its_mixture_is_left_out_of_the_improvement_only(test_set):
    items = [test_set[i] for i in range(len(test_set))]
    items[0]["sources"][[0, 2]] = 0.0  # only guitar sounds in the first window: the mixture is its reference
    items[0]["mixture"] = items[0]["sources"].sum(0)
    edited = ListSet(items)
    result = run_evaluation(Oracle(edited, {"psa"}), edited, tiny_config(), progress=False)
    rest = run_evaluation(Oracle(edited, {"psa"}), ListSet(items[1:]), tiny_config(), progress=False)
    guitar, guitar_rest = result.metrics["separation"]["guitar"], rest.metrics["separation"]["guitar"]
    # Without the rule the mixture's SI-SDR (~ +140 dB) would drag the mean improvement to ~ -100 dB.
    assert guitar["si_sdri"] == guitar_rest["si_sdri"] and guitar["si_sdri"] > -10
    assert guitar["si_sdr"] != guitar_rest["si_sdr"]  # the window still counts for SI-SDR itself
    assert ("guitar: 1 of 2 examples have no other source sounding (the mixture is its reference); "
            "left out of its improvement (si_sdri) averages") in result.notes


def test_report_examples_hold_the_arrays(test_set):
    result = run_evaluation(Oracle(test_set, {"psa", "roll"}), test_set, tiny_config("eval.report_examples=1"), progress=False)
    assert len(result.examples) == 1
    ex = result.examples[0]
    frames = 1 + len(ex.mixture) // HOP
    assert ex.references.shape == ex.estimates.shape == (3, len(ex.mixture))
    assert ex.magnitude.shape == (N_FFT // 2 + 1, frames)
    assert ex.est_masks.shape == ex.ref_masks.shape == (3, N_FFT // 2 + 1, frames)
    assert ex.est_roll.shape == ex.ref_roll.shape == (3, 88, frames)


class FrameModel(nn.Module):
    """Outputs that depend on each frame alone: masks 1/S everywhere, roll logits from the magnitude."""

    def __init__(self) -> None:
        super().__init__()
        self.front_end = FrontEnd(N_FFT, HOP, "hann", "none", "none")
        self.sources, self.sample_rate = list(SOURCES), SR

    def forward(self, mixture: torch.Tensor) -> dict:
        spec, magnitude, _ = self.front_end(mixture)
        batch, _, frames = magnitude.shape
        roll = magnitude[:, :88].unsqueeze(1).expand(batch, len(SOURCES), 88, frames)
        mask = torch.full((batch, len(SOURCES), *magnitude.shape[1:]), 1 / len(SOURCES))
        return {"spec": spec, "magnitude": magnitude, "mask": mask, "roll": roll}


def test_chunked_inference_stitches_on_the_frame_grid():
    torch.manual_seed(0)
    mixture = torch.randn(2, 3 * SR + 100)  # not a whole number of chunks or hops
    whole = infer(FrameModel(), mixture, None, HOP, chunk_samples=10 * SR)
    chunked = infer(FrameModel(), mixture, None, HOP, chunk_samples=SR)
    frames = 1 + mixture.shape[-1] // HOP
    assert chunked.roll.shape == whole.roll.shape == (2, 3, 88, frames)
    assert chunked.stems.shape == (2, 3, mixture.shape[-1])
    # Constant masks: each chunk inverts exactly, so the stitched stems are mixture / S.
    torch.testing.assert_close(chunked.stems, mixture.unsqueeze(1).expand_as(chunked.stems) / 3, atol=1e-5, rtol=0)
    # Frames away from chunk edges see the same samples in both runs.
    inner = [f for f in range(frames) if min(abs(f * HOP - b) for b in range(0, mixture.shape[-1], SR)) > N_FFT]
    torch.testing.assert_close(chunked.roll[..., inner], whole.roll[..., inner], atol=1e-4, rtol=1e-4)


def test_chunk_bounds_join_a_short_tail():
    assert chunk_bounds(1000, 450, 0) == [(0, 450), (450, 1000)]  # a 100-sample tail joins its neighbour
    assert chunk_bounds(1000, 400, 0) == [(0, 400), (400, 800), (800, 1000)]  # half a chunk stays alone
    assert chunk_bounds(1000, 300, 0) == [(0, 300), (300, 600), (600, 1000)]
    assert chunk_bounds(1100, 400, 0) == [(0, 400), (400, 800), (800, 1100)]
    assert chunk_bounds(300, 400, 0) == [(0, 300)]


def test_sources_must_match_the_model(test_set):
    from mstt.errors import MsttError

    oracle = Oracle(test_set, {"psa"})
    oracle.sources = ["piano", "guitar"]
    with pytest.raises(MsttError, match="differ from the model"):
        run_evaluation(oracle, test_set, tiny_config(), progress=False)


def test_spread_examples_are_deterministic(test_set):
    config = tiny_config("eval.max_examples=1")
    first = run_evaluation(Oracle(test_set, {"psa"}), test_set, config, progress=False).metrics
    again = run_evaluation(Oracle(test_set, {"psa"}), test_set, config, progress=False).metrics
    assert first == again and first["n_examples"] == 1
    assert np.isfinite(first["separation"]["mean"]["sdr"])


def test_a_metric_failing_on_some_rows_scores_the_others():
    from mstt.evaluate.core import _rows

    def fussy(estimate: torch.Tensor, reference: torch.Tensor) -> dict:
        if bool((reference[:, 0] > 0).any()):
            raise RuntimeError("singular")
        return {"x": reference[:, 1]}

    reference = torch.tensor([[0.0, 1.0], [1.0, 2.0], [0.0, 3.0]])
    values, failed = _rows(fussy, reference, reference)
    assert failed == 1
    assert values["x"][0] == 1.0 and math.isnan(values["x"][1]) and values["x"][2] == 3.0
    with pytest.raises(RuntimeError, match="singular"):
        _rows(fussy, reference[1:2], reference[1:2])


def test_a_head_registered_with_decode_reads_the_notes(test_set):
    from mstt.nn.model import HeadSpec

    calls = []

    def decode(roll, output, frame_rate, decoding):
        """Ignore the roll: one note per source from the head's own output, to see it was used."""
        calls.append((tuple(roll.shape), tuple(output.shape), frame_rate, decoding))
        return [np.array([[0.0, 0.5, 60.0, 100.0]]) for _ in range(roll.shape[0])]

    register = get_registry().register_callback("heads", "test-plugin")
    register("fake_onset", nn.Identity, output="onset", loss="transcription", decode=decode)
    oracle = Oracle(test_set, {"roll"})
    oracle.specs = {"onset": HeadSpec(key="onset", name="fake_onset", output="onset", weight=1.0, loss=None, decode=decode)}
    forward = oracle.forward
    oracle.forward = lambda mixture: {**forward(mixture), "onset": forward(mixture)["roll"]}
    config = tiny_config("eval.note_threshold=0.3", "eval.note_hold_threshold=0.2")
    m = run_evaluation(oracle, test_set, config, progress=False).metrics
    assert len(calls) == 2 and calls[0][:2] == ((3, 88, 1 + 2 * SR // HOP),) * 2
    assert calls[0][2:] == (SR / HOP, NoteDecoding(0.3, 0.2, 1))
    assert m["transcription"]["piano"]["onset"]["f1"] < 0.5  # the decoder's single note, not the oracle roll


def test_the_other_source_has_a_separation_row_but_no_share_of_the_means():
    from mstt.evaluate.scores import ScoreBook

    book = ScoreBook(["piano", "guitar", "other"])
    none = torch.zeros(1, 3, dtype=torch.bool)
    book.add_separation({"si_sdri": torch.tensor([[2.0, 4.0, -10.0]])}, none, none)
    for source in ("piano", "guitar"):
        book.add_transcription(source, {"onset": {"precision": 1.0, "recall": 0.5, "f1": 0.6}})
    book.count_transcription()
    separation = book.separation_block()
    assert separation["other"]["si_sdri"] == -10.0 and separation["mean"]["si_sdri"] == 3.0
    transcription = book.transcription_block()
    assert "other" not in transcription and transcription["mean"]["onset"]["f1"] == 0.6


def test_metrics_declare_a_mixture_baseline_and_per_example_scoring(test_set):
    calls = []

    def energy_metric(options):
        def energy(estimate, reference):
            return {"energy": 10 * torch.log10(estimate.pow(2).mean(-1).double())}

        return energy

    def per_example_metric(options):
        def per_example(estimate, reference):
            calls.append(tuple(estimate.shape))
            n = estimate.shape[0]
            return {"energy": torch.zeros(n, dtype=torch.float64), "rows": torch.full((n,), float(n), dtype=torch.float64)}

        return per_example

    register = get_registry().register_callback("metrics", "test-plugin")
    register("energy_test", energy_metric, task="separation", mixture_baseline=True)
    register("per_example_test", per_example_metric, task="separation", per_example=True)
    config = tiny_config("eval.metrics=[energy_test,per_example_test]")
    piano = run_evaluation(Oracle(test_set, {"psa"}), test_set, config, progress=False).metrics["separation"]["piano"]
    assert list(piano) == ["energy", "energyi", "rows"]
    assert piano["energyi"] < 0  # the estimate is quieter than the mixture
    assert piano["energy"] != 0  # the row metric's, not the per-example metric's zeros
    assert calls == [(len(SOURCES), 2 * SR)] * 2 and piano["rows"] == len(SOURCES)  # once per example, all sources


def test_heads_declare_how_their_outputs_become_stems_and_notes(test_set):
    from mstt.nn.model import HeadSpec

    register = get_registry().register_callback("heads", "test-plugin")
    register("masks_test", nn.Identity, output="soft_masks", loss="mask_inference", stems="mask")
    register("keys_test", nn.Identity, output="key_probs", loss="transcription", notes="roll")
    plain = Oracle(test_set, {"psa", "roll"})
    renamed = Oracle(test_set, {"psa", "roll"})
    renamed.specs = {
        "m": HeadSpec(key="m", name="masks_test", output="soft_masks", weight=1.0, loss=None),
        "k": HeadSpec(key="k", name="keys_test", output="key_probs", weight=1.0, loss=None),
    }
    names = {"mask": "soft_masks", "roll": "key_probs"}
    renamed.forward = lambda mixture: {names.get(k, k): v for k, v in plain.forward(mixture).items()}
    renamed.activated = lambda outputs: {**outputs, "key_probs": torch.sigmoid(outputs["key_probs"])}
    expected = run_evaluation(plain, test_set, tiny_config(), progress=False).metrics
    assert run_evaluation(renamed, test_set, tiny_config(), progress=False).metrics == expected
