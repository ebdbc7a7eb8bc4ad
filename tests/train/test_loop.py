"""The training loop on a tiny in-memory dataset of random notes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mstt.errors import MsttError
from mstt.nn.build import build_model
from mstt.nn.model import MultiTaskModel
from mstt.plugins import get_registry
from mstt.recipe import load_recipe
from mstt.train import load_checkpoint, resolve_device, train

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SAMPLE_RATE, SECONDS, HOP = 8000, 1.0, 64


class ToneDataset(Dataset):
    """Two sources, each one sine note at a random MIDI pitch over a random span, with its roll."""

    def __init__(self, n: int, seed: int = 0, n_sources: int = 2) -> None:
        rng = np.random.default_rng(seed)
        samples = int(SAMPLE_RATE * SECONDS)
        frames = 1 + samples // HOP
        t = np.arange(samples) / SAMPLE_RATE
        self.items = []
        for i in range(n):
            sources = np.zeros((n_sources, samples), np.float32)
            roll = np.zeros((n_sources, 88, frames), np.float32)
            onset = np.zeros_like(roll)
            for s in range(n_sources):
                pitch = int(rng.integers(40 + 14 * s, 52 + 14 * s))
                f0, f1 = sorted(rng.integers(0, frames, size=2))
                f1 = max(f1, f0 + 8)
                a, b = f0 * HOP, min(samples, f1 * HOP)
                freq = 440.0 * 2 ** ((pitch - 69) / 12)
                sources[s, a:b] = 0.3 * np.sin(2 * np.pi * freq * t[a:b])
                roll[s, pitch - 21, f0:f1] = 1.0
                onset[s, pitch - 21, f0] = 1.0
            self.items.append(
                {
                    "mixture": torch.from_numpy(sources.sum(0)),
                    "sources": torch.from_numpy(sources),
                    "roll": torch.from_numpy(roll),
                    "onset": torch.from_numpy(onset),
                    "track": f"Track{i:05d}",
                    "start": 0.0,
                }
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]



def tiny_config(*overrides: str, recipe: str = "cerberus_set1.yaml"):
    """A recipe scaled down to seconds of CPU time; later overrides win."""
    base = [
        f"data.sample_rate={SAMPLE_RATE}",
        f"data.crop_seconds={SECONDS}",
        "features.n_fft=256",
        f"features.hop_length={HOP}",
        "model.encoder.options.hidden_size=16",
        "model.encoder.options.num_layers=1",
        "model.encoder.options.dropout=0.0",
        "model.heads.dc.options.embedding_dim=4",
        "trainer.batch_size=4",
        "trainer.num_workers=0",
        "trainer.validate_every=5",
        "trainer.log_every=5",
        "trainer.device=cpu",
        "trainer.max_steps=10",
        "trainer.patience=0",
        "optim.lr=0.01",
    ]
    # The trainer does not read data.kind; pick a registered adapter so the recipe validates
    # whichever adapters this checkout has.
    kinds = get_registry().names("datasets")
    if kinds and "synth" not in kinds:
        base.append(f"data.kind={kinds[0]}")
    return load_recipe([RECIPES / recipe], base + list(overrides))


def make_model(config, seed: int = 0):
    """The recipe's model with seeded initial weights."""
    torch.manual_seed(seed)
    return build_model(config)


def run(config, out: Path, train_n: int = 12, val_n: int = 4, model=None):
    """Train a freshly seeded model of ``config`` into ``out``."""
    model = model or make_model(config)
    return train(config, model, ToneDataset(train_n, seed=1), ToneDataset(val_n, seed=2), out, progress=False)


def params_of(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_loss_goes_down_and_logs_are_written(tmp_path):
    config = tiny_config("trainer.max_steps=40", "trainer.validate_every=10", "trainer.log_every=10")
    result = run(config, tmp_path)
    assert result.stopped == "max_steps" and result.step == 40
    losses = [row["loss"] for row in result.history]
    assert [row["step"] for row in result.history] == [10, 20, 30, 40]
    assert losses[-1] < 0.8 * losses[0]
    assert set(result.history[0]) >= {"loss", "loss/dc", "loss/mi", "loss/tr", "lr", "time"}
    with open(tmp_path / "logs" / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "time", "lr", "loss", "loss/dc", "loss/mi", "loss/tr"]
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    with open(tmp_path / "logs" / "validation.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert result.best_path.is_file() and result.last_path.is_file()
    assert (tmp_path / "recipe.yaml").read_text().startswith("name: cerberus_set1")


def test_best_is_chosen_on_the_monitored_metric(tmp_path):
    config = tiny_config("trainer.max_steps=20", "trainer.monitor=loss/tr", "trainer.monitor_mode=max")
    result = run(config, tmp_path)
    best = load_checkpoint(result.best_path)["best"]
    values = [row["loss/tr"] for row in result.history]
    assert best["metric"] == "loss/tr" and best["value"] == max(values)
    assert best["step"] == result.history[int(np.argmax(values))]["step"]
    assert load_checkpoint(result.best_path)["step"] == best["step"]


def test_unknown_monitor_is_a_one_line_error(tmp_path):
    with pytest.raises(MsttError, match="trainer.monitor: 'loss/xx' is not a validation metric; use one of loss, loss/dc"):
        run(tiny_config("trainer.monitor=loss/xx"), tmp_path)


def test_resume_continues_and_matches_an_uninterrupted_run(tmp_path, capsys):
    config20 = tiny_config("trainer.max_steps=20")
    straight = run(config20, tmp_path / "straight")
    first = run(tiny_config("trainer.max_steps=10"), tmp_path / "resumed")
    assert first.step == 10 and first.stopped == "max_steps"
    capsys.readouterr()
    # A different (unseeded) model: every weight must come from last.pt.
    second = run(config20, tmp_path / "resumed", model=make_model(config20, seed=123))
    assert "resumed from step 10" in capsys.readouterr().out
    assert second.step == 20 and second.stopped == "max_steps"
    assert [r["step"] for r in second.history] == [5, 10, 15, 20]
    a, b = params_of(straight.last_path), params_of(second.last_path)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6)
    assert second.history[-1]["loss"] == pytest.approx(straight.history[-1]["loss"], rel=1e-4)
    with open(tmp_path / "resumed" / "logs" / "train.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [5, 10, 15, 20]


def test_finished_run_does_not_train_again(tmp_path):
    config = tiny_config()
    first = run(config, tmp_path)
    before = first.last_path.stat().st_mtime_ns
    again = run(config, tmp_path)
    assert again.stopped == "finished_before" and again.step == 10
    assert again.history == first.history
    assert first.last_path.stat().st_mtime_ns == before


def test_time_budget_stops_and_can_be_raised(tmp_path, capsys):
    spent = run(tiny_config("trainer.max_minutes=0"), tmp_path)
    assert spent.stopped == "max_minutes" and spent.step == 0
    assert [r["step"] for r in spent.history] == [0] and spent.best_path.is_file()
    assert run(tiny_config("trainer.max_minutes=0"), tmp_path).stopped == "finished_before"
    assert "holds a finished run (step 0, max_minutes); nothing to train" in capsys.readouterr().out
    raised = run(tiny_config("trainer.max_minutes=60"), tmp_path)
    assert raised.stopped == "max_steps" and raised.step == 10


def test_progress_bar_shows_every_head(tmp_path, capsys):
    run(tiny_config("trainer.max_steps=2"), tmp_path / "a")
    assert capsys.readouterr().err == ""
    config = tiny_config("trainer.max_steps=2")
    train(config, make_model(config), ToneDataset(4, seed=1), ToneDataset(4, seed=2), tmp_path / "b", progress=True)
    err = capsys.readouterr().err
    assert all(f"{head}=" in err for head in ("loss", "dc", "mi", "tr", "lr")) and "2/2" in err


def test_different_recipe_is_refused_naming_the_key(tmp_path):
    run(tiny_config(), tmp_path)
    with pytest.raises(MsttError, match=r"holds a run of a different recipe \(optim.lr: 0.01 there, 0.02 here\).*another --out"):
        run(tiny_config("optim.lr=0.02"), tmp_path)
    # Budgets and machinery may change between resumes.
    result = run(tiny_config("trainer.max_steps=15", "trainer.log_every=3", "eval.note_threshold=0.5"), tmp_path)
    assert result.step == 15


def test_nan_loss_names_the_step_and_head_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    config = tiny_config("trainer.max_steps=20")
    model = make_model(config)
    original = model.losses
    calls = {"n": 0}

    def poisoned(batch):
        total, per_head = original(batch)
        calls["n"] += 1
        if model.training and calls["n"] > 7:
            per_head = dict(per_head, mi=per_head["mi"] * float("nan"))
            total = total + per_head["mi"]
        return total, per_head

    monkeypatch.setattr(model, "losses", poisoned)
    with pytest.raises(MsttError, match=r"step 7: the loss of head 'mi' is nan; training diverged .*last.pt from step 5 is kept"):
        run(config, tmp_path, model=model)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 5


def test_early_stopping(tmp_path):
    # lr 0 never improves after the first validation, so patience 2 stops at the third.
    config = tiny_config("optim.lr=1e-12", "optim.schedule=none", "trainer.patience=2", "trainer.max_steps=100",
                         "trainer.validate_every=2", "trainer.monitor_mode=max", "trainer.monitor=loss/tr")
    result = run(config, tmp_path)
    assert result.stopped == "early_stopping"
    assert [r["step"] for r in result.history] == [2, 4, 6] and result.step == 6
    assert load_checkpoint(result.last_path)["finished"] is True


def test_keyboard_interrupt_saves_last_and_returns(tmp_path, monkeypatch):
    config = tiny_config("trainer.max_steps=20")
    model = make_model(config)
    original = model.losses
    calls = {"n": 0}

    def interrupted(batch):
        calls["n"] += 1
        if model.training and calls["n"] == 9:
            raise KeyboardInterrupt
        return original(batch)

    monkeypatch.setattr(model, "losses", interrupted)
    result = run(config, tmp_path, model=model)
    # Steps 1-7 done, validation at 5 (one val batch), the 9th call is step 8.
    assert result.stopped == "interrupted" and result.step == 7
    saved = load_checkpoint(result.last_path)
    assert saved["step"] == 7 and saved["finished"] is False
    resumed = run(config, tmp_path)
    assert resumed.step == 20 and resumed.stopped == "max_steps"


def test_schedule_options_are_validated(tmp_path):
    with pytest.raises(MsttError, match=r"optim.schedule_options.fctor: unknown key; did you mean factor\?"):
        run(tiny_config("optim.schedule_options.fctor=0.5"), tmp_path)
    with pytest.raises(MsttError, match=r"optim.schedule: unknown schedule 'linear'"):
        run(tiny_config("optim.schedule=linear"), tmp_path)
    with pytest.raises(MsttError, match=r"optim.name: unknown optimiser 'rmsprop'"):
        run(tiny_config("optim.name=rmsprop"), tmp_path)


@pytest.mark.parametrize("name,schedule", [("sgd", "cosine"), ("adamw", "step"), ("adam", "none")])
def test_optimisers_and_schedules_train(tmp_path, name, schedule):
    config = tiny_config(f"optim.name={name}", f"optim.schedule={schedule}", "trainer.max_steps=6")
    result = run(config, tmp_path)
    lrs = [r["lr"] for r in result.history]
    if schedule == "none":
        assert lrs == [0.01, 0.01]
    else:
        assert lrs[-1] < lrs[0] < 0.01 + 1e-12
    assert result.step == 6


def test_cuda_asked_without_gpu_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    msg = "trainer.device: cuda asked for but no GPU is visible; use trainer.device=auto or cpu"
    with pytest.raises(MsttError, match=msg):
        resolve_device("cuda")
    with pytest.raises(MsttError, match=msg):
        run(tiny_config("trainer.device=cuda"), tmp_path)
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_autocast_step_on_gpu(tmp_path):
    config = tiny_config("trainer.device=cuda", "trainer.amp=true", "trainer.max_steps=10")
    model = make_model(config)
    seen = []
    original = model.forward

    def spy(mixture):
        outputs = original(mixture)
        seen.append(torch.is_autocast_enabled("cuda") and torch.get_autocast_dtype("cuda") == torch.bfloat16)
        return outputs

    model.forward = spy
    result = run(config, tmp_path, model=model)
    assert result.step == 10 and all(seen) and seen
    assert next(model.parameters()).device.type == "cuda"
    assert all(math.isfinite(r["loss"]) for r in result.history)


def test_compile_option_compiles_the_forward_in_place(tmp_path, monkeypatch):
    config = tiny_config("trainer.compile=true", "trainer.max_steps=5")
    model = make_model(config)
    graphs = []

    def recording_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward  # run the captured graph eagerly: no C++ compiler needed on CPU

    # The loop calls model.compile(); a recording backend shows the forward really goes through dynamo.
    monkeypatch.setattr(model, "compile", lambda: MultiTaskModel.compile(model, backend=recording_backend))
    result = run(config, tmp_path, model=model)
    assert graphs and result.step == 5
    assert not any(k.startswith("_orig_mod.") for k in load_checkpoint(result.last_path)["model"])
    torch._dynamo.reset()  # drop the captured graphs before other tests


def test_workers_give_the_same_training_as_the_main_process(tmp_path):
    runs = [run(tiny_config("trainer.max_steps=6", f"trainer.num_workers={w}"), tmp_path / str(w)) for w in (0, 2)]
    a, b = (params_of(r.last_path) for r in runs)
    for key in a:
        torch.testing.assert_close(b[key], a[key])



def test_datasets_with_set_epoch_draw_new_crops_each_epoch(tmp_path):
    """TrainStream tells the dataset the epoch, also through worker processes."""
    from omegaconf import OmegaConf

    from mstt.train.distributed import DistContext, TrainStream

    class EpochEcho(torch.utils.data.Dataset):
        def __init__(self):
            self.epoch = 0

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __len__(self):
            return 4

        def __getitem__(self, index):
            return {"epoch": torch.tensor(float(self.epoch))}

    for workers in (0, 1):
        config = OmegaConf.create({"trainer": {"seed": 0, "batch_size": 2, "num_workers": workers}})
        stream = TrainStream(EpochEcho(), config, DistContext(), torch.device("cpu"))
        epochs = [next(stream)["epoch"][0].item() for _ in range(6)]
        assert epochs == [0, 0, 1, 1, 2, 2], (workers, epochs)


def test_cosine_ends_at_the_time_budget_when_it_comes_before_max_steps():
    from mstt.train.optim import Schedule

    config = tiny_config("optim.schedule=cosine", "optim.lr=0.01", "trainer.max_steps=1000", "trainer.max_minutes=1.0")
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.01)
    schedule = Schedule(config, optimizer)
    schedule.after_step(30.0)  # step 1 of 1000, but half the minute gone: half-way down the cosine
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    schedule.after_step(60.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    untimed = Schedule(tiny_config("optim.schedule=cosine", "optim.lr=0.01", "trainer.max_steps=4"), optimizer)
    untimed.after_step(3600.0)  # no max_minutes: only steps count
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.005 * (1 + math.cos(math.pi / 4)))


def test_last_checkpoint_is_also_written_between_validations(tmp_path, monkeypatch):
    import mstt.train.trainer as loop

    written = []
    real = loop.save_checkpoint

    def spy(payload, path):
        written.append((Path(path).name, payload["step"]))
        real(payload, path)

    monkeypatch.setattr(loop, "save_checkpoint", spy)
    config = tiny_config("trainer.max_steps=4", "trainer.validate_every=100", "trainer.save_every_minutes=1e-9")
    run(config, tmp_path)
    # Every step is past the (tiny) interval: last.pt at steps 1-3, then the end of training at 4.
    steps = [step for name, step in written if name == "last.pt"]
    assert steps[:3] == [1, 2, 3] and set(steps[3:]) == {4}
    written.clear()
    run(tiny_config("trainer.max_steps=4", "trainer.validate_every=100", "trainer.save_every_minutes=0"), tmp_path / "b")
    assert {step for name, step in written if name == "last.pt"} == {4}


def test_a_budget_of_days_is_said_up_front_and_a_short_one_is_not():
    from mstt.train.trainer import projection_note

    note = projection_note(1.4, 99_980, None, 30.0, torch.device("cpu"))
    assert note.startswith("note: at 1.40 s a step, the 99,980 steps left project to 38.9 hours on this CPU")
    assert "recipes/quick.yaml" in note and "trainer.max_minutes" in note
    assert projection_note(1.4, 99_980, 60.0, 30.0, torch.device("cpu")) is None  # the clock bounds it to an hour
    assert projection_note(0.2, 1_180, None, 5.0, torch.device("cpu")) is None
