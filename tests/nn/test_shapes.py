"""Every encoder and head maps documented input shapes to documented output shapes."""

from __future__ import annotations

import pytest
import torch

from mstt.nn.encoders import (
    BLSTMEncoder,
    BLSTMOptions,
    TCNEncoder,
    TCNOptions,
    TransformerEncoder,
    TransformerOptions,
)
from mstt.nn.heads import (
    DeepClusteringHead,
    DeepClusteringOptions,
    MaskInferenceHead,
    MaskInferenceOptions,
    PianoRollHead,
    PianoRollOptions,
    tanh_unit_norm,
)

BATCH, FRAMES, N_FREQ, SOURCES = 2, 13, 33, 3


@pytest.mark.parametrize(
    "encoder",
    [
        BLSTMEncoder(N_FREQ, BLSTMOptions(hidden_size=8, num_layers=2)),
        BLSTMEncoder(N_FREQ, BLSTMOptions(hidden_size=8, num_layers=1, bidirectional=False)),
        TCNEncoder(N_FREQ, TCNOptions(channels=16, blocks=3)),
        TransformerEncoder(N_FREQ, TransformerOptions(d_model=16, num_layers=1, num_heads=2, feedforward=32)),
    ],
    ids=["blstm", "lstm", "tcn", "transformer"],
)
def test_encoders_keep_frames_and_report_out_features(encoder):
    out = encoder(torch.randn(BATCH, FRAMES, N_FREQ))
    assert out.shape == (BATCH, FRAMES, encoder.out_features)


def test_blstm_defaults_are_the_papers():
    encoder = BLSTMEncoder(513)
    assert encoder.lstm.num_layers == 4 and encoder.lstm.hidden_size == 300 and encoder.lstm.bidirectional
    assert encoder.out_features == 600 and encoder.lstm.dropout == pytest.approx(0.3)


@pytest.mark.parametrize("fp32, dtype", [(False, torch.bfloat16), (True, torch.float32)])
def test_blstm_fp32_option_keeps_the_lstm_out_of_bf16_autocast(fp32, dtype):
    torch.manual_seed(0)
    encoder = BLSTMEncoder(N_FREQ, BLSTMOptions(hidden_size=8, num_layers=2, dropout=0.0, fp32=fp32))
    features = torch.randn(BATCH, FRAMES, N_FREQ)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = encoder(features)
    assert out.dtype == dtype
    if fp32:  # the same numbers as outside autocast
        torch.testing.assert_close(out, encoder(features))


def test_deep_clustering_head_gives_unit_norm_embeddings():
    head = DeepClusteringHead(10, SOURCES, N_FREQ, DeepClusteringOptions(embedding_dim=20))
    v = head(torch.randn(BATCH, FRAMES, 10))
    assert v.shape == (BATCH, N_FREQ, FRAMES, 20)
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(BATCH, N_FREQ, FRAMES))


def test_fused_tanh_unit_norm_matches_autograd_values_and_gradients():
    z = torch.randn(3, 4, 5, 6, dtype=torch.float64)
    z[0, 0, 0] = 0.0  # an all-zero embedding: the norm is clamped, as in F.normalize
    z.requires_grad_(True)
    reference = torch.nn.functional.normalize(torch.tanh(z), dim=-1)
    fused = tanh_unit_norm(z)
    torch.testing.assert_close(fused, reference)
    grad = torch.randn_like(reference)
    (expected,) = torch.autograd.grad(reference, z, grad)
    (got,) = torch.autograd.grad(fused, z, grad)
    torch.testing.assert_close(got, expected)
    assert torch.autograd.gradcheck(tanh_unit_norm, (torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True),))


def test_softmax_masks_sum_to_one_and_sigmoid_masks_are_bounded():
    trunk = torch.randn(BATCH, FRAMES, 10)
    masks = MaskInferenceHead(10, SOURCES, N_FREQ, MaskInferenceOptions("softmax"))(trunk)
    assert masks.shape == (BATCH, SOURCES, N_FREQ, FRAMES)
    torch.testing.assert_close(masks.sum(1), torch.ones(BATCH, N_FREQ, FRAMES))
    sig = MaskInferenceHead(10, SOURCES, N_FREQ, MaskInferenceOptions("sigmoid"))(trunk)
    assert sig.min() >= 0 and sig.max() <= 1


@pytest.mark.parametrize("hidden", [0, 32])
def test_piano_roll_head_has_88_keys_per_source(hidden):
    roll = PianoRollHead(10, SOURCES, N_FREQ, PianoRollOptions(hidden_size=hidden))(torch.randn(BATCH, FRAMES, 10))
    assert roll.shape == (BATCH, SOURCES, 88, FRAMES)


def test_heads_declare_their_output_names():
    assert DeepClusteringHead.output == "embedding"
    assert MaskInferenceHead.output == "mask"
    assert PianoRollHead.output == "roll"
