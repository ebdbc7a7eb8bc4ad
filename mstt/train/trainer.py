"""The training loop as a :class:`Trainer`: resume, steps, validation, checkpoints, stopping."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import Dataset

import mstt
from mstt.errors import MsttError
from mstt.plugins import get_registry
from mstt.recipe import to_yaml
from mstt.train import distributed as D
from mstt.train.budget import StepClock, StepHook
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
from mstt.train.init import initialise
from mstt.train.logs import Progress, RunLogs
from mstt.train.optim import Schedule, build_optimizer, current_lr
from mstt.train.precision import Precision, resolve_precision
from mstt.train.state import PROJECT_AFTER_STEPS, TrainResult, TrainState, projection_note
from mstt.train.validation import check_finite, is_better, validation_losses


class _LossForward(nn.Module):
    """``forward(batch) = model.losses(batch)``, so DDP sees the call that needs gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted total and per-head losses."""
        return self.model.losses(batch)


class Trainer:
    """One training run of ``model`` into ``out``; :meth:`run` resumes or starts it, trains to a stop (budget: :mod:`mstt.train.budget`)."""

    def __init__(
        self, config: DictConfig, model: nn.Module, train_set: Dataset, val_set: Dataset, out: Path, progress: bool = True,
        on_step: StepHook | None = None,
    ) -> None:
        self.config, self.model = config, model
        self.on_step = on_step
        self.train_set, self.val_set = train_set, val_set
        self.out = Path(out)
        self.progress = progress
        self.last_path = self.out / "checkpoints" / "last.pt"
        self.best_path = self.out / "checkpoints" / "best.pt"
        self.heads = list(model.specs)
        self.metrics = ["loss"] + [f"loss/{h}" for h in self.heads]
        # mstt.checks.validate_recipe (run by build_model) refused any other recipe.
        assert config.trainer.monitor in self.metrics, f"trainer.monitor {config.trainer.monitor} not in {self.metrics}"
        self.recipe = OmegaConf.to_container(config, resolve=True)
        self.state = TrainState(best={"metric": config.trainer.monitor, "value": None, "step": None})
        self.logs: RunLogs | None = None
        self.bar: Progress | None = None
        self.saved_step: int | None = None  # step of the checkpoint on disk, for the divergence message
        self.saved_at = 0.0  # when last.pt was last written (monotonic clock), for save_every_minutes
        # Data position after the last completed step: a Ctrl-C inside next(stream) must not
        # make the resumed run skip the batch it was fetching.
        self.position = (0, 0)
        self.clock = StepClock()  # what the time budget projects the next step and the end from

    # ------------------------------------------------------------ the run

    def run(self) -> TrainResult:
        """Join the process group, resume or start, train to a stop; leave the group in every case."""
        self.ctx, self.device = D.setup(self.config.trainer.device)
        clean = False  # set just before returning: only then may teardown wait for the other ranks
        try:
            result = self._run()
            clean = True
            return result
        finally:
            if self.bar is not None:
                self.bar.close()
            if self.logs is not None:
                self.logs.close()
            D.teardown(self.ctx, wait_for_others=clean)

    def _run(self) -> TrainResult:
        saved = self.resume()
        if saved is not None and saved["finished"] and self.state.limits_reached(self.config):
            if self.ctx.is_main:
                print(f"{self.out} holds a finished run (step {self.state.step}, {self.state.stopped}); nothing to train",
                      flush=True)
            return self._result("finished_before")
        D.barrier(self.ctx)  # every rank has read last.pt before rank 0 may replace it
        self.setup(saved)
        del saved  # the optimizer state is loaded: free the checkpoint's copy
        return self._result(self.fit())

    def _result(self, stopped: str) -> TrainResult:
        return TrainResult(self.best_path, self.last_path, self.state.step, stopped, self.state.history)

    def resume(self) -> dict[str, Any] | None:
        """Read ``last.pt`` when ``out`` holds a run of this recipe: the state from it, and the checkpoint."""
        if not self.last_path.is_file():
            return None
        saved = load_checkpoint(self.last_path)
        check_same_recipe(saved["recipe"], self.recipe, self.out)
        self.state = TrainState.from_checkpoint(saved)
        self.saved_step = self.state.step
        return saved

    def setup(self, saved: dict[str, Any] | None) -> None:
        """Seed, load ``model.init`` into a fresh run, place the model, build optimiser and schedule, restore ``saved``;
        then compile/DDP, data, logs."""
        t = self.config.trainer
        D.seed_everything(int(t.seed) + self.ctx.rank)
        if saved is None and self.config.model.init:
            # Fine-tuning: every rank loads the same weights; a resumed run's last.pt takes precedence.
            for line in initialise(self.model, self.config):
                if self.ctx.is_main:
                    print(line, flush=True)
        self.model.to(self.device)
        self.optimizer = build_optimizer(self.config, self.model.parameters())
        self.schedule = Schedule(self.config, self.optimizer)
        if saved is not None:
            self._restore(saved)
        if self.ctx.is_main:
            write_text_atomic(self.out / "recipe.yaml", to_yaml(self.config))
        self._wrap()
        self._open_data_and_logs()

    def _restore(self, saved: dict[str, Any]) -> None:
        """Weights, optimiser, schedule and RNG from a checkpoint."""
        self.model.load_state_dict(clean_state_dict(saved["model"]))
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["scheduler"])
        if self.ctx.is_main:
            set_rng_state(saved["rng"], self.device)
            ignored = f" (model.init={self.config.model.init} applies to a fresh run only)" if self.config.model.init else ""
            print(f"resumed from step {self.state.step}{ignored}", flush=True)
        else:  # only rank 0's RNG is saved; other ranks get a fresh, distinct stream
            D.seed_everything(int(self.config.trainer.seed) + self.ctx.rank + 7919 * self.state.step)

    def _wrap(self) -> None:
        """torch.compile in place, the DDP wrapper, and the step's precision."""
        t = self.config.trainer
        if t.compile:
            self.model.compile()  # in place: ``model.losses`` calls ``self(...)``, which is then compiled
        self.net: nn.Module = _LossForward(self.model)
        if self.ctx.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.precision: Precision = resolve_precision(str(t.precision), bool(t.amp), self.device)
        if self.ctx.is_main:
            print(f"precision: {self.precision.name} ({self.precision.reason})", flush=True)

    def _open_data_and_logs(self) -> None:
        """The training stream from the saved data position, the validation loader, logs and progress bar."""
        t = self.config.trainer
        self.stream = D.TrainStream(self.train_set, self.config, self.ctx, self.device, self.state.epoch,
                                    self.state.epoch_batches)
        if len(self.val_set) == 0:
            raise MsttError("validation set is empty; validation picks best.pt and needs at least one example")
        self.val_loader = D.validation_loader(self.val_set, self.stream.local_batch, self.config, self.ctx, self.device)
        self.logs = RunLogs(self.out, self.heads, self.saved_step, enabled=self.ctx.is_main)
        self.bar = Progress(int(t.max_steps), self.state.step, enabled=self.progress and self.ctx.is_main)
        self.t0 = self.saved_at = time.monotonic()
        self.position = (self.stream.epoch, self.stream.epoch_batches)

    def elapsed(self) -> float:
        """Training seconds, summed over resumes."""
        return self.state.elapsed + time.monotonic() - self.t0

    # ------------------------------------------------------------ training

    def fit(self) -> str:
        """Train to a stop, validate the last step, save last.pt as finished; Ctrl-C saves and returns."""
        state = self.state
        self.model.train()
        self.first_step = state.step
        self.validated_at = state.step if state.history and state.history[-1]["step"] == state.step else -1
        self.window, self.window_n = [0.0] * len(self.metrics), 0  # train.csv means over log_every steps
        stopped = ""
        try:
            stopped = state.stopped = self._loop()
            if self.validated_at != state.step:
                self.validated_at = state.step
                if self.validate():
                    stopped = state.stopped = "early_stopping"
            self.save(finished=True)
        except KeyboardInterrupt:
            # Ctrl-C: keep what was trained. The last completed step is a consistent state.
            stopped = state.stopped = "interrupted"
            self.bar.write(f"interrupted at step {state.step}; saving {self.last_path}")
            self.save(finished=False)
        return stopped

    def _loop(self) -> str:
        """Steps, validations and periodic saves until a stop; returns its reason."""
        t = self.config.trainer
        while True:
            seconds, started = self.elapsed(), time.monotonic()
            stopped = self.should_stop(seconds) or self.step(seconds)
            if stopped:
                return stopped
            validating = self.state.step % t.validate_every == 0
            if not validating and self._save_due():
                self.save()  # a SIGKILL between validations loses at most save_every_minutes of training
            self.clock.add_step(time.monotonic() - started)  # the step and its save; validations apart
            if self.on_step is not None:
                self.on_step(self.state.step, self.clock.step_times[-1])
            if validating:
                self.validated_at = self.state.step
                if self.validate():
                    return "early_stopping"

    def should_stop(self, seconds: float) -> str:
        """Why training stops before the next step, or "": max_steps, or max_minutes with one process.

        Under DDP the ranks agree on the time budget inside :meth:`step` (early stopping: :meth:`validate`).
        """
        if self.state.step >= self.config.trainer.max_steps:
            return "max_steps"
        if self._over_time(seconds) and not self.ctx.enabled:
            return "max_minutes"
        return ""

    def _over_time(self, seconds: float) -> bool:
        """Whether no further step (and the end of training) fits in ``trainer.max_minutes`` at ``seconds``."""
        minutes = self.config.trainer.max_minutes
        return minutes is not None and not self.clock.fits(seconds, minutes * 60, len(self.val_loader))

    def _autocast(self) -> torch.autocast:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.precision.autocast)

    def step(self, seconds: float) -> str:
        """One optimiser step at ``seconds`` of training; "", or "max_minutes" when the ranks agree it is spent."""
        batch = D.to_device(next(self.stream), self.device)
        with self._autocast():
            total, per_head = self.net(batch)
        reduced = self._reduce(total, per_head, seconds)
        if reduced is None:
            return "max_minutes"
        values, seconds = reduced
        check_finite(values, self.heads, f"step {self.state.step + 1}", self.last_path, self.saved_step)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.config.optim.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.schedule.after_step(seconds)
        self.state.step += 1
        self.position = (self.stream.epoch, self.stream.epoch_batches)
        self._after_step(values)
        return ""

    def _reduce(
        self, total: torch.Tensor, per_head: dict[str, torch.Tensor], seconds: float
    ) -> tuple[list[float], float] | None:
        """The step's losses (and clock) as every rank sees them; None when any rank is over the time budget."""
        vec = torch.stack([total.detach()] + [per_head[h].detach() for h in self.heads]).float()
        if self.ctx.enabled:
            # One small all-reduce a step: every rank logs the global mean, and every rank
            # sees a NaN or the time budget at the same step, so none is left waiting;
            # the mean clock keeps a time-based schedule identical on every rank.
            world = self.ctx.world_size
            extra = torch.tensor([float(self._over_time(seconds)), seconds / world], device=vec.device)
            vec = D.all_reduce_sum(torch.cat([vec / world, extra]), self.ctx)
            if vec[-2].item() > 0:
                return None
            seconds = vec[-1].item()
            vec = vec[:-2]
        return vec.tolist(), seconds

    def _after_step(self, values: list[float]) -> None:
        """The budget projection once, the progress bar, and a train.csv row every log_every steps."""
        state, t = self.state, self.config.trainer
        if state.step == self.first_step + PROJECT_AFTER_STEPS and self.ctx.is_main:
            self._say_projection()
        self.window = [w + v for w, v in zip(self.window, values)]
        self.window_n += 1
        lr = current_lr(self.optimizer)
        self.bar.update(dict(zip(self.metrics, values)), lr)
        if state.step % t.log_every == 0:
            means = dict(zip(self.metrics, (w / self.window_n for w in self.window)))
            self.logs.log_train({"step": state.step, "time": round(self.elapsed(), 3), "lr": lr, **means})
            self.window, self.window_n = [0.0] * len(self.metrics), 0

    def _say_projection(self) -> None:
        t = self.config.trainer
        step_seconds = (time.monotonic() - self.t0) / PROJECT_AFTER_STEPS
        note = projection_note(step_seconds, t.max_steps - self.state.step, t.max_minutes, self.elapsed(), self.device)
        if not note:
            return
        if self.progress:
            self.bar.write(note)
        else:  # said even without a progress bar: it is the run's one warning
            print(note, flush=True)

    # ------------------------------------------------------ validation and saving

    def validate(self) -> bool:
        """Validate, log, step the plateau schedule, save; True when patience ran out."""
        t, state = self.config.trainer, self.state
        started = time.monotonic()
        row = validation_losses(self.model, self.val_loader, self.device, self.precision.autocast, self.ctx, self.heads)
        self.clock.validation_seconds = time.monotonic() - started
        check_finite([row[m] for m in self.metrics], self.heads, f"validation at step {state.step}",
                     self.last_path, self.saved_step)
        row = {"step": state.step, "time": round(self.elapsed(), 3), "lr": current_lr(self.optimizer), **row}
        state.history.append(row)
        improved = is_better(row[t.monitor], state.best, t.monitor_mode)
        if improved:
            state.best = {"metric": t.monitor, "value": row[t.monitor], "step": state.step}
        self.schedule.after_validation(row[t.monitor])
        self.logs.log_validation(row)
        self.bar.write(
            f"step {state.step}: " + " ".join(f"{m}={row[m]:.4g}" for m in self.metrics) + (" (best)" if improved else "")
        )
        since_best = sum(1 for r in state.history if r["step"] > (state.best["step"] or 0))
        self.save(improved=improved)
        return t.patience > 0 and since_best >= t.patience

    def _save_due(self) -> bool:
        """Whether save_every_minutes has passed since last.pt was written (the end of training saves anyway)."""
        t = self.config.trainer
        return (
            t.save_every_minutes > 0
            and self.state.step < t.max_steps
            and time.monotonic() - self.saved_at >= t.save_every_minutes * 60
        )

    def save(self, finished: bool = False, improved: bool = False) -> None:
        """Write last.pt, and best.pt before it when validation improved; only rank 0 writes."""
        if not self.ctx.is_main:
            return
        started = time.monotonic()
        payload = self.checkpoint_payload(finished)
        # best.pt first: a crash between the two writes leaves last.pt describing an
        # older best, which the resumed run simply improves on again.
        if improved:
            save_checkpoint(payload, self.best_path)
        save_checkpoint(payload, self.last_path)
        self.saved_step = self.state.step
        self.saved_at = time.monotonic()
        self.clock.save_seconds = self.saved_at - started

    def checkpoint_payload(self, finished: bool) -> dict[str, Any]:
        """The checkpoint (format in :mod:`mstt.train.checkpoint`): recipe, weights, optimiser, RNG, progress."""
        state = self.state
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "mstt_version": mstt.__version__,
            "plugins": dict(get_registry().plugin_versions),
            "recipe": self.recipe,
            "model": clean_state_dict(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "rng": rng_state(self.device),
            "step": state.step,
            "epoch": self.position[0],
            "epoch_batches": self.position[1],
            "elapsed": self.elapsed(),
            "best": dict(state.best),
            "finished": finished,
            "stopped": state.stopped,
            "history": list(state.history),
        }


def train(
    config: DictConfig,
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    out: Path,
    progress: bool = True,
    on_step: StepHook | None = None,
) -> TrainResult:
    """Train ``model`` on the recipe's trainer/optim settings; resume from ``out`` when it holds a run.

    ``model`` is any module with ``specs`` (head key -> spec) and ``losses(batch) -> (total,
    {head: loss})`` (MultiTaskModel, SeparatorModel), built by ``build_model`` (which checked the
    recipe). ``trainer.batch_size`` is the global batch, split over the processes under torchrun.
    Returns on Ctrl-C with stopped "interrupted" after saving last.pt; the caller decides the exit status.
    ``on_step(step, seconds)`` is called after each step (see :data:`StepHook`).
    """
    return Trainer(config, model, train_set, val_set, out, progress, on_step).run()
