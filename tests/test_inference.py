"""mstt.load / Separator: chunked separation, resampling, cross-fades, cluster alignment, checkpoint loading."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pretty_midi
import pytest
import torch
from omegaconf import OmegaConf
from scipy.signal import resample_poly

import mstt
from mstt.cli import main
from mstt.errors import MsttError
from mstt.features import STFT
from mstt.inference import Separator, StreamResampler, align_order, chunk_bounds, crossfade_weights
from mstt.nn.build import build_model
from mstt.plugins import get_registry, reset_registry
from mstt.recipe import load_recipe
from mstt.train.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, save_checkpoint

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY = ["model.encoder.options.hidden_size=8", "model.encoder.options.num_layers=1", "features.n_fft=256",
        "features.hop_length=64", "data.sample_rate=8000"]


def tiny_recipe(name: str = "cerberus_set1", extra: tuple[str, ...] = ()):
    """A recipe of the paper's family scaled down to an 8 kHz, 8-unit model."""
    return load_recipe([RECIPES / f"{name}.yaml"], TINY + list(extra))


def make_checkpoint(path: Path, name: str = "cerberus_set1", seed: int = 0, overrides: tuple[str, ...] = (),
                    **fields) -> Path:
    """Save a tiny randomly initialised model in the training checkpoint format (with optimiser state)."""
    config = tiny_recipe(name, overrides)
    torch.manual_seed(seed)
    model = build_model(config)
    optimiser = torch.optim.Adam(model.parameters())
    model.losses({"mixture": torch.randn(1, 800), "sources": torch.randn(1, len(model.sources), 800),
                  "roll": torch.zeros(1, len(model.sources), 88, 13)})[0].backward()
    optimiser.step()
    payload = {
        "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION, "mstt_version": mstt.__version__,
        "plugins": dict(get_registry().plugin_versions), "recipe": OmegaConf.to_container(config, resolve=True),
        "model": model.state_dict(), "optimizer": optimiser.state_dict(), "step": 1,
    }
    payload.update(fields)
    save_checkpoint(payload, path)
    return path



@pytest.fixture
def checkpoint(tmp_path) -> Path:
    return make_checkpoint(tmp_path / "tiny.pt")


def tones(seconds: float, rate: int, freqs=(220.0, 1330.0), seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    return sum(0.2 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs).astype(np.float32)


# ------------------------------------------------------------ building blocks


@pytest.mark.parametrize("rates", [(44100, 16000), (16000, 44100), (96000, 8000), (8000, 22050)])
def test_stream_resampler_equals_whole_signal_resampling(rates):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 30011)).astype(np.float32)
    resampler, parts, i = StreamResampler(*rates), [], 0
    while i < x.shape[-1]:
        n = int(rng.integers(1, 4000))
        parts.append(resampler.push(x[:, i : i + n]))
        i += n
    parts.append(resampler.push(x[:, :0], last=True))
    expected = resample_poly(x, resampler.up, resampler.down, axis=-1)
    np.testing.assert_allclose(np.concatenate(parts, axis=-1), expected, atol=1e-5)


def test_chunk_bounds_cover_with_overlap_and_merge_a_short_tail():
    assert chunk_bounds(500, 1000, 100) == [(0, 500)]
    bounds = chunk_bounds(2750, 1000, 100)
    assert bounds == [(0, 1000), (900, 1900), (1800, 2750)]
    # 2100 would leave a tail of 300 < half a chunk: it joins the chunk before.
    assert chunk_bounds(2000, 1000, 100) == [(0, 1000), (900, 2000)]
    t = np.arange(2750)
    total = sum(crossfade_weights(t, k, bounds) * ((t >= a) & (t < b)) for k, (a, b) in enumerate(bounds))
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_align_order_undoes_a_permutation():
    rng = np.random.default_rng(2)
    previous = rng.standard_normal((4, 500))
    current = previous[[2, 0, 3, 1]] + 0.3 * rng.standard_normal((4, 500))
    perm = align_order(previous, current)
    np.testing.assert_array_equal(current[perm], current[[1, 3, 0, 2]])


# ------------------------------------------------------------ the API


def test_load_and_separate_a_stereo_recording(checkpoint):
    separator = mstt.load(checkpoint, device="cpu")
    x = tones(3.3, 22050)
    result = separator.separate(np.stack([x, 0.5 * x]), 22050, chunk_seconds=1.0, overlap_seconds=0.25)
    assert list(result.stems) == ["piano", "guitar"]
    assert all(s.shape == x.shape and s.dtype == np.float32 for s in result.stems.values())
    frames = 1 + int(np.ceil(len(x) * 8000 / 22050)) // 64
    assert list(result.rolls) == ["piano", "guitar"] and result.rolls["piano"].shape == (88, frames)
    assert result.sample_rate == 22050 and result.frame_rate == 8000 / 64
    assert isinstance(result.notes, pretty_midi.PrettyMIDI)
    assert [(i.name, i.program, i.is_drum) for i in result.notes.instruments] == [("piano", 0, False), ("guitar", 25, False)]
    assert result.messages[0] == "downmixed 2 channels to mono"
    assert "resampled 22050 Hz" in result.messages[1]


def test_the_other_source_is_a_stem_without_roll_or_midi_track(tmp_path):
    path = make_checkpoint(tmp_path / "other.pt", overrides=("data.sources=[piano,guitar,other]",))
    result = mstt.load(path, device="cpu").separate(tones(2.0, 8000), 8000)
    assert list(result.stems) == ["piano", "guitar", "other"]
    assert list(result.rolls) == ["piano", "guitar"]
    assert [i.name for i in result.notes.instruments] == ["piano", "guitar"]


def test_accepts_tensors_and_samples_by_channels(checkpoint):
    separator = mstt.load(checkpoint, device="cpu")
    x = tones(1.0, 8000)
    a = separator.separate(torch.from_numpy(x), 8000)
    b = separator.separate(np.stack([x, x], axis=1), 8000)  # (samples, channels), as soundfile reads
    np.testing.assert_allclose(a.stems["piano"], b.stems["piano"], atol=1e-6)


@pytest.mark.parametrize("overlap", [0.0, 0.5])
def test_stems_of_every_chunk_cross_fade_back_to_the_mixture(checkpoint, overlap):
    """Softmax masks sum to one, so the stems must sum to the mixture whatever the chunking."""
    separator = mstt.load(checkpoint, device="cpu")
    x = np.random.default_rng(3).standard_normal(8000 * 7).astype(np.float32) * 0.1
    result = separator.separate(x, 8000, chunk_seconds=2.0, overlap_seconds=overlap)
    np.testing.assert_allclose(sum(result.stems.values()), x, atol=1e-5)


def test_a_recording_shorter_than_one_stft_window(checkpoint):
    result = mstt.load(checkpoint, device="cpu").separate(tones(0.01, 44100), 44100)
    assert result.stems["piano"].shape == (441,) and result.rolls["piano"].shape == (88, 2)


def test_model_kinds_without_masks_or_without_rolls(tmp_path):
    x = tones(3.0, 8000)
    dc = mstt.load(make_checkpoint(tmp_path / "dc.pt", name="dc_set1"), device="cpu").separate(x, 8000, chunk_seconds=1.0)
    assert list(dc.stems) == ["cluster1", "cluster2"] and dc.notes is None and dc.rolls == {}
    np.testing.assert_allclose(sum(dc.stems.values()), x, atol=1e-4)  # k-means masks are one-hot per bin
    tr = mstt.load(make_checkpoint(tmp_path / "tr.pt", name="tr_set1"), device="cpu").separate(x, 8000)
    assert tr.stems == {} and list(tr.rolls) == ["piano", "guitar"] and len(tr.notes.instruments) == 2


class FrameLocalModel(torch.nn.Module):
    """Stand-in whose roll at each frame depends only on that frame's spectrum: chunking must not move frames."""

    sources = ["piano", "guitar"]
    sample_rate = 8000
    specs: dict = {}

    def __init__(self) -> None:
        super().__init__()
        self.stft = STFT(256, 64)

    def forward(self, mixture):
        spec = self.stft(mixture)  # (B, F, T)
        roll = torch.tanh(spec.abs()[:, :88]).unsqueeze(1).repeat(1, 2, 1, 1)
        return {"spec": spec, "magnitude": spec.abs(), "roll": roll}


def test_rolls_of_chunks_land_on_the_frames_of_the_whole():
    config = tiny_recipe()
    separator = Separator(FrameLocalModel(), config, torch.device("cpu"))
    rng = np.random.default_rng(4)
    # Noise whose loudness changes every few frames: a roll shifted by one frame would not match.
    x = (rng.standard_normal(8000 * 6) * np.repeat(rng.uniform(0.01, 1, 8000 * 6 // 200), 200)).astype(np.float32)
    whole = separator.separate(x, 8000, chunk_seconds=100).rolls["piano"]
    chunked = separator.separate(x, 8000, chunk_seconds=1.5, overlap_seconds=0.5).rolls["piano"]
    assert whole.shape == chunked.shape == (88, 1 + len(x) // 64)
    diff = np.abs(whole - chunked)
    # Only frames within half a window of a chunk edge differ, and those get small weights there.
    assert diff.mean() < 2e-3 and np.median(diff) == 0.0
    assert np.abs(whole[:, 1:] - chunked[:, :-1]).mean() > 20 * diff.mean()


class ShuffledBands(torch.nn.Module):
    """A permutation-invariant stand-in: low and high band of each chunk, in a random order per chunk."""

    sources = ["a", "b"]
    sample_rate = 8000
    permutation_invariant = True

    def __init__(self) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, mixture):
        spec = torch.fft.rfft(mixture)
        cut = spec.shape[-1] // 4  # 1 kHz
        low, high = spec.clone(), spec.clone()
        low[..., cut:] = 0
        high[..., :cut] = 0
        bands = torch.stack([torch.fft.irfft(low, mixture.shape[-1]), torch.fft.irfft(high, mixture.shape[-1])], 1)
        return bands[:, torch.randperm(2, generator=self.generator)]


def test_unordered_stems_are_aligned_across_chunks():
    separator = Separator(ShuffledBands(), tiny_recipe(), torch.device("cpu"))
    low, high = tones(8.0, 8000, (300.0,)), tones(8.0, 8000, (2500.0,), seed=1)
    result = separator.separate(low + high, 8000, chunk_seconds=1.0, overlap_seconds=0.25)
    assert list(result.stems) == ["cluster1", "cluster2"]
    assert any("no fixed instrument order" in m for m in result.messages)
    first, second = result.stems.values()
    inner = slice(800, -800)  # the FFT band split has edge effects at the file's ends
    target = (low, high) if np.dot(first, low) > np.dot(first, high) else (high, low)
    for stem, want in zip((first, second), target):
        err = np.abs(stem[inner] - want[inner]).max()
        assert err < 0.05, err


def test_masks_keep_the_source_order_as_evaluation_assumes(tmp_path):
    # permutation_invariant speaks for a separator's waveforms; a mask head's masks follow the
    # sources, and evaluation scores them per source without a permutation: so does separation.
    separator = mstt.load(make_checkpoint(tmp_path / "mi.pt", name="mi_set1"), device="cpu")
    separator.model.permutation_invariant = True
    result = separator.separate(tones(2.0, 8000), 8000, chunk_seconds=1.0)
    assert list(result.stems) == ["piano", "guitar"]
    assert not any("no fixed instrument order" in m for m in result.messages)


def test_notes_come_from_a_head_decoder_when_one_is_registered(checkpoint):
    separator = mstt.load(checkpoint, device="cpu")
    calls = []

    def decode(roll, output, frame_rate, decoding):
        calls.append((roll.shape, output.shape, frame_rate, decoding.threshold, decoding.min_frames))
        return [np.array([[0.0, 0.5, 60, 100]]), np.zeros((0, 4))]

    separator.decoder = ("onset", decode)  # as mstt.decode.note_decoder finds a head registered with decode
    roll = np.zeros((2, 88, 50), np.float32)
    midi = separator.transcribe(roll, {"onset": roll}, threshold=0.3)
    assert calls == [((2, 88, 50), (2, 88, 50), 125.0, 0.3, 2)]
    assert [len(i.notes) for i in midi.instruments] == [1, 0] and midi.instruments[0].notes[0].pitch == 60
    plain = mstt.load(checkpoint, device="cpu").transcribe(np.full((2, 88, 50), 0.9, np.float32), {})
    assert all(len(i.notes) == 88 for i in plain.instruments)  # every key on for 50 frames: one note each


@pytest.mark.parametrize(
    ("audio", "message"),
    [(np.zeros(0), "zero-length"), (np.zeros(8000), "silent"), (np.full(800, np.nan), "NaN"),
     (np.zeros((2, 3, 4)), "must be (samples,)")],
)
def test_bad_waveforms_are_one_line_errors(checkpoint, audio, message):
    with pytest.raises(MsttError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mstt.load(checkpoint, device="cpu").separate(audio, 8000)


# ------------------------------------------------------------ loading


def test_a_file_that_is_no_checkpoint(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(MsttError, match="notes.txt is not a torch checkpoint"):
        mstt.load(text)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(MsttError, match="other.pt: not an mstt checkpoint"):
        mstt.load(other)


def test_a_checkpoint_holding_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "format_version": 1, "model": SimpleNamespace(x=1)}, path)
    with pytest.raises(MsttError, match="evil.pt: not a readable mstt checkpoint"):
        mstt.load(path)


def test_another_format_version_is_one_line(tmp_path):
    path = make_checkpoint(tmp_path / "old.pt", format_version=0, mstt_version="0.0.1")
    with pytest.raises(MsttError, match=r"old.pt: checkpoint format 0 \(made by mstt 0.0.1\).*use mstt 0.0.1 or retrain"):
        mstt.load(path)


def test_weights_of_another_mstt_version_that_do_not_fit(tmp_path):
    path = make_checkpoint(tmp_path / "x.pt", mstt_version="0.0.1", model={"encoder.bogus": torch.zeros(1)})
    with pytest.raises(MsttError, match="x.pt: its weights do not fit .*made by mstt 0.0.1, this is"):
        mstt.load(path)


def test_a_checkpoint_from_another_version_that_loads_says_so(tmp_path):
    separator = mstt.load(make_checkpoint(tmp_path / "y.pt", mstt_version="0.0.9"), device="cpu")
    assert separator.messages == [f"y.pt was made by mstt 0.0.9; this is mstt {mstt.__version__}"]


def onset_checkpoint_without_its_plugin(tmp_path, monkeypatch):
    """A checkpoint whose recipe uses the onset head, with the plugin's entry points not loaded."""
    monkeypatch.setenv("MSTT_LOAD_PLUGINS", "")
    reset_registry()
    config = OmegaConf.to_container(tiny_recipe(), resolve=True)
    config["model"]["heads"]["onset"] = {"name": "onset", "weight": 0.5}
    return make_checkpoint(tmp_path / "onsets.pt", recipe=config,
                           plugins={"builtin": mstt.__version__, "mstt-onset-head": "0.3.1"})


def test_a_missing_plugin_is_named(tmp_path, monkeypatch):
    path = onset_checkpoint_without_its_plugin(tmp_path, monkeypatch)
    with pytest.raises(MsttError) as info:
        mstt.load(path)
    message = str(info.value)
    assert message == (f"{path}: needs plugin mstt-onset-head 0.3.1, which is not installed (pip install mstt-onset-head)")


@pytest.mark.parametrize("command", [["eval", "{path}", "--data", "synth:"], ["export", "{path}", "{out}"]])
def test_every_command_names_a_missing_plugin(tmp_path, monkeypatch, capsys, command):
    # mstt eval and mstt export go through the same loader as mstt.load: the same one line.
    path = onset_checkpoint_without_its_plugin(tmp_path, monkeypatch)
    assert main([a.format(path=path, out=tmp_path / "small.pt") for a in command]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith(f"{path}: needs plugin mstt-onset-head 0.3.1, which is not installed (pip install mstt-onset-head)")


def test_a_tensor_of_the_wrong_shape_names_the_parameter_and_both_shapes(tmp_path, capsys):
    path = make_checkpoint(tmp_path / "good.pt")
    data = torch.load(path, weights_only=True)
    key = next(k for k, v in data["model"].items() if v.dim() == 2)
    right = "x".join(map(str, data["model"][key].shape))
    data["model"][key] = torch.zeros(3, 5)
    torch.save(data, tmp_path / "shape.pt")
    with pytest.raises(MsttError) as caught:
        mstt.load(tmp_path / "shape.pt")
    message = str(caught.value)
    assert f"parameter {key} is 3x5 in the checkpoint but {right} in the model" in message and "\n" not in message
    # mstt eval goes through its own loader: the same line.
    assert main(["eval", str(tmp_path / "shape.pt"), "--data", "synth:"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"parameter {key} is 3x5 in the checkpoint but {right}" in line
