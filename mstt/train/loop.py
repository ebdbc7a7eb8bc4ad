"""The training loop: steps, validation, best/last checkpoints, resume, early stopping."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Dataset

import mstt
from mstt.errors import MsttError
from mstt.plugins import get_registry
from mstt.recipe import to_yaml
from mstt.train import distributed as D
from mstt.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    check_same_recipe,
    clean_state_dict,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_text_atomic,
)
from mstt.train.logs import Progress, RunLogs
from mstt.train.optim import Schedule, build_optimizer, current_lr
from mstt.train.precision import resolve_precision


@dataclass
class TrainResult:
    """What a call to :func:`train` did."""

    best_path: Path
    last_path: Path
    step: int
    stopped: str  # max_steps | max_minutes | early_stopping | interrupted | finished_before
    history: list[dict[str, Any]] = field(default_factory=list)  # validation rows


@dataclass
class _State:
    """Everything about the run's progress that a checkpoint carries besides the weights."""

    step: int = 0
    epoch: int = 0
    epoch_batches: int = 0  # batches of ``epoch`` already consumed
    elapsed: float = 0.0  # training seconds before this session
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""


class _LossForward(nn.Module):
    """``forward(batch) = model.losses(batch)``, so DDP sees the call that needs gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted total and per-head losses."""
        return self.model.losses(batch)


def _limits_reached(state: _State, config: DictConfig) -> bool:
    """A finished run trains again only when its budget was raised since (not after early stopping)."""
    minutes = config.trainer.max_minutes
    return (
        state.stopped == "early_stopping"
        or state.step >= config.trainer.max_steps
        or (minutes is not None and state.elapsed >= minutes * 60)
    )


def _improved(value: float, best: dict[str, Any], mode: str) -> bool:
    if best.get("value") is None:
        return True
    return value < best["value"] if mode == "min" else value > best["value"]


def _non_finite(values: list[float], heads: list[str]) -> tuple[str, float] | None:
    """The first head whose loss is NaN/inf (or the weighted total when no head is)."""
    for head, value in zip(heads, values[1:]):
        if not math.isfinite(value):
            return f"head '{head}'", value
    return ("the weighted total", values[0]) if not math.isfinite(values[0]) else None


def train(
    config: DictConfig,
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    out: Path,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` on the recipe's trainer/optim settings; resume from ``out`` when it holds a run.

    ``model`` is any module with ``specs`` (head key -> spec) and ``losses(batch) -> (total,
    {head: loss})`` (MultiTaskModel, SeparatorModel). ``trainer.batch_size`` is the global
    batch, split over the processes under torchrun. Returns on Ctrl-C with stopped
    "interrupted" after saving last.pt; the caller decides the exit status.
    """
    out = Path(out)
    last_path, best_path = out / "checkpoints" / "last.pt", out / "checkpoints" / "best.pt"
    heads = list(model.specs)
    metrics = ["loss"] + [f"loss/{h}" for h in heads]
    # mstt.checks.validate_recipe (run by build_model) refused any other recipe.
    assert config.trainer.monitor in metrics, f"trainer.monitor {config.trainer.monitor} not in {metrics}"
    t = config.trainer
    recipe = OmegaConf.to_container(config, resolve=True)
    ctx, device = D.setup(t.device)
    logs = None
    bar = None
    clean = False  # set just before returning: only then may teardown wait for the other ranks
    try:
        state = _State(best={"metric": t.monitor, "value": None, "step": None})
        saved = None
        if last_path.is_file():
            saved = load_checkpoint(last_path)
            check_same_recipe(saved["recipe"], recipe, out)
            state = _State(
                step=int(saved["step"]),
                epoch=int(saved["epoch"]),
                epoch_batches=int(saved["epoch_batches"]),
                elapsed=float(saved["elapsed"]),
                best=dict(saved["best"]),
                history=list(saved["history"]),
                stopped=str(saved.get("stopped") or ""),
            )
            if saved["finished"] and _limits_reached(state, config):
                if ctx.is_main:
                    print(f"{out} holds a finished run (step {state.step}, {state.stopped}); nothing to train", flush=True)
                clean = True
                return TrainResult(best_path, last_path, state.step, "finished_before", state.history)
        D.barrier(ctx)  # every rank has read last.pt before rank 0 may replace it

        D.seed_everything(int(t.seed) + ctx.rank)
        model.to(device)
        optimizer = build_optimizer(config, model.parameters())
        schedule = Schedule(config, optimizer)
        if saved is not None:
            model.load_state_dict(clean_state_dict(saved["model"]))
            optimizer.load_state_dict(saved["optimizer"])
            schedule.load_state_dict(saved["scheduler"])
            if ctx.is_main:
                set_rng_state(saved["rng"], device)
            else:  # only rank 0's RNG is saved; other ranks get a fresh, distinct stream
                D.seed_everything(int(t.seed) + ctx.rank + 7919 * state.step)
            if ctx.is_main:
                print(f"resumed from step {state.step}", flush=True)
            del saved
        if ctx.is_main:
            write_text_atomic(out / "recipe.yaml", to_yaml(config))

        if t.compile:
            model.compile()  # in place: ``model.losses`` calls ``self(...)``, which is then compiled
        net: nn.Module = _LossForward(model)
        if ctx.enabled:
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None
            )
        precision = resolve_precision(str(t.precision), bool(t.amp), device)
        amp = precision.autocast
        if ctx.is_main:
            print(f"precision: {precision.name} ({precision.reason})", flush=True)

        stream = D.TrainStream(train_set, config, ctx, device, state.epoch, state.epoch_batches)
        if len(val_set) == 0:
            raise MsttError("validation set is empty; validation picks best.pt and needs at least one example")
        val_loader = D.validation_loader(val_set, stream.local_batch, config, ctx, device)

        resume_step = state.step if last_path.is_file() else None
        logs = RunLogs(out, heads, resume_step, enabled=ctx.is_main)
        bar = Progress(int(t.max_steps), state.step, enabled=progress and ctx.is_main)
        t0 = time.monotonic()
        saved_step = [resume_step]  # step of the checkpoint on disk, for the divergence message
        saved_at = [time.monotonic()]  # when last.pt was last written, for save_every_minutes
        # Data position after the last completed step: a Ctrl-C inside next(stream) must not
        # make the resumed run skip the batch it was fetching.
        position = [stream.epoch, stream.epoch_batches]

        def elapsed() -> float:
            return state.elapsed + time.monotonic() - t0

        def save(finished: bool, improved: bool) -> None:
            if not ctx.is_main:
                return
            payload = {
                "format": CHECKPOINT_FORMAT,
                "format_version": CHECKPOINT_FORMAT_VERSION,
                "mstt_version": mstt.__version__,
                "plugins": dict(get_registry().plugin_versions),
                "recipe": recipe,
                "model": clean_state_dict(model.state_dict()),
                "optimizer": optimizer.state_dict(),
                "scheduler": schedule.state_dict(),
                "rng": rng_state(device),
                "step": state.step,
                "epoch": position[0],
                "epoch_batches": position[1],
                "elapsed": elapsed(),
                "best": dict(state.best),
                "finished": finished,
                "stopped": state.stopped,
                "history": list(state.history),
            }
            # best.pt first: a crash between the two writes leaves last.pt describing an
            # older best, which the resumed run simply improves on again.
            if improved:
                save_checkpoint(payload, best_path)
            save_checkpoint(payload, last_path)
            saved_step[0] = state.step
            saved_at[0] = time.monotonic()

        def validate() -> bool:
            """Validate, log, step the plateau schedule, save; True when patience ran out."""
            row = _validate(model, val_loader, device, amp, ctx, heads)
            bad = _non_finite([row[m] for m in metrics], heads)
            if bad is not None:
                raise MsttError(
                    f"validation at step {state.step}: the loss of {bad[0]} is {bad[1]}; training diverged "
                    f"({_kept(last_path, saved_step[0])}); lower optim.lr or optim.grad_clip"
                )
            row = {"step": state.step, "time": round(elapsed(), 3), "lr": current_lr(optimizer), **row}
            state.history.append(row)
            improved = _improved(row[t.monitor], state.best, t.monitor_mode)
            if improved:
                state.best = {"metric": t.monitor, "value": row[t.monitor], "step": state.step}
            schedule.after_validation(row[t.monitor])
            logs.log_validation(row)
            bar.write(
                f"step {state.step}: " + " ".join(f"{m}={row[m]:.4g}" for m in metrics) + (" (best)" if improved else "")
            )
            since_best = sum(1 for r in state.history if r["step"] > (state.best["step"] or 0))
            save(finished=False, improved=improved)
            return t.patience > 0 and since_best >= t.patience

        model.train()
        first_step = state.step
        validated_at = state.step if state.history and state.history[-1]["step"] == state.step else -1
        window = [0.0] * len(metrics)
        window_n = 0
        stopped = ""
        try:
            while True:
                if state.step >= t.max_steps:
                    stopped = "max_steps"
                    break
                seconds = elapsed()
                over_time = t.max_minutes is not None and seconds >= t.max_minutes * 60
                if over_time and not ctx.enabled:
                    stopped = "max_minutes"
                    break
                batch = D.to_device(next(stream), device)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                    total, per_head = net(batch)
                vec = torch.stack([total.detach()] + [per_head[h].detach() for h in heads]).float()
                if ctx.enabled:
                    # One small all-reduce a step: every rank logs the global mean, and every rank
                    # sees a NaN or the time budget at the same step, so none is left waiting;
                    # the mean clock keeps a time-based schedule identical on every rank.
                    extra = torch.tensor([float(over_time), seconds / ctx.world_size], device=vec.device)
                    vec = D.all_reduce_sum(torch.cat([vec / ctx.world_size, extra]), ctx)
                    if vec[-2].item() > 0:
                        stopped = "max_minutes"
                        break
                    seconds = vec[-1].item()
                    vec = vec[:-2]
                values = vec.tolist()
                bad = _non_finite(values, heads)
                if bad is not None:
                    raise MsttError(
                        f"step {state.step + 1}: the loss of {bad[0]} is {bad[1]}; training diverged "
                        f"({_kept(last_path, saved_step[0])}); lower optim.lr or optim.grad_clip"
                    )
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                if config.optim.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
                optimizer.step()
                schedule.after_step(seconds)
                state.step += 1
                position[:] = [stream.epoch, stream.epoch_batches]
                if state.step == first_step + PROJECT_AFTER_STEPS and ctx.is_main:
                    note = projection_note(
                        (time.monotonic() - t0) / PROJECT_AFTER_STEPS, t.max_steps - state.step,
                        t.max_minutes, elapsed(), device,
                    )
                    if note:  # said even without a progress bar: it is the run's one warning
                        bar.write(note) if progress else print(note, flush=True)

                window = [w + v for w, v in zip(window, values)]
                window_n += 1
                lr = current_lr(optimizer)
                bar.update(dict(zip(metrics, values)), lr)
                if state.step % t.log_every == 0:
                    means = dict(zip(metrics, (w / window_n for w in window)))
                    logs.log_train({"step": state.step, "time": round(elapsed(), 3), "lr": lr, **means})
                    window, window_n = [0.0] * len(metrics), 0
                if state.step % t.validate_every == 0:
                    validated_at = state.step
                    if validate():
                        stopped = "early_stopping"
                        break
                elif (
                    t.save_every_minutes > 0
                    and state.step < t.max_steps  # the end of training saves anyway
                    and time.monotonic() - saved_at[0] >= t.save_every_minutes * 60
                ):
                    # A SIGKILL between validations loses at most this much training.
                    save(finished=False, improved=False)
            state.stopped = stopped
            if validated_at != state.step:
                validated_at = state.step
                if validate():
                    stopped = state.stopped = "early_stopping"
            save(finished=True, improved=False)
        except KeyboardInterrupt:
            # Ctrl-C: keep what was trained. The last completed step is a consistent state.
            state.stopped = stopped = "interrupted"
            bar.write(f"interrupted at step {state.step}; saving {last_path}")
            save(finished=False, improved=False)
        clean = True
        return TrainResult(best_path, last_path, state.step, stopped, state.history)
    finally:
        if bar is not None:
            bar.close()
        if logs is not None:
            logs.close()
        D.teardown(ctx, wait_for_others=clean)


PROJECT_AFTER_STEPS = 20  # steps timed before the budget is projected
LONG_RUN_HOURS = 3.0  # a projection past this is said up front


def projection_note(
    step_seconds: float, steps_left: int, max_minutes: float | None, elapsed: float, device: torch.device
) -> str | None:
    """One line when the rest of the budget projects past :data:`LONG_RUN_HOURS`; else None."""
    seconds = step_seconds * steps_left
    if max_minutes is not None:
        seconds = min(seconds, max(0.0, max_minutes * 60 - elapsed))
    if seconds < LONG_RUN_HOURS * 3600:
        return None
    where = "this CPU" if device.type == "cpu" else f"this {device.type} device"
    return (
        f"note: at {step_seconds:.2f} s a step, the {steps_left:,} steps left project to {seconds / 3600:.1f} hours "
        f"on {where}; for a model in minutes add recipes/quick.yaml, or bound it with trainer.max_minutes=N"
    )


def _kept(last_path: Path, step: int | None) -> str:
    """Where the last good checkpoint is, for the divergence message."""
    if step is not None:
        return f"{last_path} from step {step} is kept"
    return "no checkpoint was written before it"


def _validate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    amp: bool,
    ctx: D.DistContext,
    heads: list[str],
) -> dict[str, float]:
    """Mean weighted total and per-head losses over the whole validation set (all ranks)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(len(heads) + 2, dtype=torch.float64, device=device)
    with torch.no_grad():
        for groups in loader:
            for batch in groups:
                batch = D.to_device(batch, device)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                    total, per_head = model.losses(batch)
                n = batch["mixture"].shape[0]
                sums[:-1] += torch.stack([total] + [per_head[h] for h in heads]).double() * n
                sums[-1] += n
    model.train(was_training)
    D.all_reduce_sum(sums, ctx)
    values = sums.tolist()
    count = values[-1]
    means = [v / count for v in values[:-1]]
    return {"loss": means[0], **{f"loss/{h}": v for h, v in zip(heads, means[1:])}}
