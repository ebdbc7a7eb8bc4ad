"""Data-parallel processes, and the data loaders that split the data between them.

One process per GPU (or per CPU worker) through ``torchrun``; ``train`` notices
``WORLD_SIZE > 1`` in the environment, joins the process group (NCCL on CUDA, Gloo on
CPU), wraps the model in ``DistributedDataParallel`` and gives each process its share of
every global batch. ``trainer.batch_size`` is the GLOBAL batch: each of the N processes
takes ``batch_size // N`` examples a step, so a recipe trains the same way on any number of
GPUs. Only rank 0 writes logs and checkpoints; validation losses are summed over all ranks.

One machine, 4 GPUs::

    torchrun --standalone --nproc-per-node 4 -m mstt run recipes/cerberus_set4.yaml --out runs/c4

Several machines (run the same line on each; any node's address works as the endpoint)::

    torchrun --nnodes 2 --nproc-per-node 4 \\
        --rdzv-backend c10d --rdzv-endpoint node0.example:29400 --rdzv-id cerberus-c4 \\
        -m mstt run recipes/cerberus_set4.yaml --out /shared/runs/c4

``--out`` must be a folder every node can see if you want to resume from another node; only
rank 0 (on the first node) writes it. ``--nnodes 1:4`` allows elastic membership, but each
restart resumes from ``last.pt`` like any other resume.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from mstt.devices import resolve_device  # re-exported too: older code imports it from here
from mstt.errors import MsttError


@dataclass
class DistContext:
    """Where this process stands among the data-parallel processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we created the process group, so we destroy it

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs and checkpoints."""
        return self.rank == 0


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as torchrun sets it; 1 when absent."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def setup(device_spec: str) -> tuple[DistContext, torch.device]:
    """Join the process group when ``WORLD_SIZE > 1`` and pick this process's device."""
    world = world_size_from_env()
    device = resolve_device(device_spec)
    if world <= 1:
        return DistContext(), device
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    if device.type == "cuda" and device.index is None:
        # One GPU per process: torchrun's LOCAL_RANK picks it.
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), local_rank, owns)
    return ctx, device


def teardown(ctx: DistContext, wait_for_others: bool = True) -> None:
    """Leave the process group if ``setup`` created it; after a normal finish, only once every rank has.

    Without the barrier a rank that finishes first (rank 1: it writes no checkpoint) destroys its
    gloo group while rank 0 is still saving; the two-process test's rank 1 died twice in full test
    runs with SIGABRT ("terminate called without an active exception"), which this race would
    explain. After an error the other ranks may be gone, so a failing rank does not wait for them.
    """
    if ctx.owns_group and dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a tensor over every process (identity with one process)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op with one process)."""
    if ctx.enabled:
        dist.barrier()


def per_process_batch(global_batch: int, n_examples: int, ctx: DistContext) -> int:
    """``trainer.batch_size`` split over the processes; checks it divides and fits the data."""
    if global_batch % ctx.world_size:
        raise MsttError(
            f"trainer.batch_size: {global_batch} does not split evenly over {ctx.world_size} processes; "
            f"use a multiple of {ctx.world_size}"
        )
    if n_examples < global_batch:
        raise MsttError(
            f"trainer.batch_size: {global_batch} is larger than the training set ({n_examples} examples)"
        )
    return global_batch // ctx.world_size


class GlobalBatchSampler(Sampler[list[int]]):
    """Endless-friendly batch sampler: each epoch a seeded permutation cut into global batches.

    Every process draws the same permutation and takes its own slice of each global batch,
    so N processes with batch B/N see exactly the examples one process with batch B sees.
    The incomplete last global batch is dropped so every process runs the same number of
    steps. ``set_epoch(epoch, start)`` skips ``start`` batches, which is how a resumed run
    continues mid-epoch without reading the skipped examples.
    """

    def __init__(self, n_examples: int, global_batch: int, ctx: DistContext, seed: int) -> None:
        self.n = n_examples
        self.global_batch = global_batch
        self.local_batch = global_batch // ctx.world_size
        self.rank = ctx.rank
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Choose the epoch's permutation and how many of its batches to skip."""
        self.epoch, self.start = epoch, start

    def batches_per_epoch(self) -> int:
        """Global batches in one epoch."""
        return self.n // self.global_batch

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        # A private generator: the permutation never depends on (or disturbs) the global RNG.
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=generator)
        lo = self.rank * self.local_batch
        for b in range(self.start, self.batches_per_epoch()):
            chunk = order[b * self.global_batch : (b + 1) * self.global_batch]
            yield chunk[lo : lo + self.local_batch].tolist()


def shard_indices(n_examples: int, ctx: DistContext) -> list[int]:
    """This process's share of an evaluation set: every world_size-th example, no padding."""
    return list(range(ctx.rank, n_examples, ctx.world_size))


# ------------------------------------------------------------------ loading


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python's random."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack the tensor fields of examples (``mixture``, ``sources``, ``roll``, ``onset``...)."""
    batch: dict[str, torch.Tensor] = {}
    for key, value in items[0].items():
        if not isinstance(value, (torch.Tensor, np.ndarray)) or key == "notes":
            continue  # names, start times and note lists are not model inputs
        values = [torch.as_tensor(item[key]) for item in items]
        if any(v.shape != values[0].shape for v in values):
            shapes = sorted({tuple(v.shape) for v in values})
            raise MsttError(
                f"training examples differ in shape for '{key}' ({shapes}); the training set must give fixed-length crops"
            )
        batch[key] = torch.stack(values)
    return batch


def collate_groups(items: list[dict[str, Any]]) -> list[dict[str, torch.Tensor]]:
    """Validation batches: examples grouped by length, since whole tracks differ in length."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(tuple(torch.as_tensor(item["mixture"]).shape), []).append(item)
    return [collate(group) for group in groups.values()]


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a collated batch (pinned memory on CUDA makes the copy asynchronous)."""
    return {k: v.to(device, non_blocking=device.type == "cuda") for k, v in batch.items()}


def _loader_options(config: DictConfig, device: torch.device, per_epoch: bool = False) -> dict[str, Any]:
    """DataLoader options; ``per_epoch`` starts fresh workers each epoch (see TrainStream)."""
    workers = int(config.trainer.num_workers)  # checked non-negative by the loop
    return dict(
        num_workers=workers,
        persistent_workers=workers > 0 and not per_epoch,
        pin_memory=device.type == "cuda",
        # No worker_init_fn: torch seeds torch, numpy and random in each worker from the
        # loader's base seed + worker id, and the base seed comes from a generator seeded by
        # trainer.seed (TrainStream), so worker randomness is already seeded and distinct.
    )


class TrainStream:
    """Endless training batches over seeded epochs; ``epoch``/``epoch_batches`` say where it is."""

    def __init__(
        self, dataset: Dataset, config: DictConfig, ctx: DistContext, device: torch.device, epoch: int = 0, epoch_batches: int = 0
    ) -> None:
        t = config.trainer
        self.seed = int(t.seed)
        self.local_batch = per_process_batch(int(t.batch_size), len(dataset), ctx)
        self.sampler = GlobalBatchSampler(len(dataset), int(t.batch_size), ctx, self.seed)
        # Worker seeds come from this generator, never from the global RNG, so that validation
        # or a resume does not shift the training randomness.
        self.generator = torch.Generator()
        # Datasets that draw new random crops each epoch (set_epoch) need workers that see the
        # new epoch: persistent workers keep the copy of the dataset they started with.
        self.dataset = dataset
        self.per_epoch = callable(getattr(dataset, "set_epoch", None))
        self.loader = DataLoader(
            dataset, batch_sampler=self.sampler, collate_fn=collate, generator=self.generator,
            **_loader_options(config, device, per_epoch=self.per_epoch),
        )
        self.epoch, self.epoch_batches = epoch, epoch_batches
        self._source: Iterator[tuple[dict[str, torch.Tensor], int, int]] | None = None

    def __iter__(self) -> "TrainStream":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._source is None:
            self._source = self._batches(self.epoch, self.epoch_batches)
        batch, self.epoch, self.epoch_batches = next(self._source)
        return batch

    def _batches(self, epoch: int, epoch_batches: int) -> Iterator[tuple[dict[str, torch.Tensor], int, int]]:
        """Endless ``(batch, epoch, batches of that epoch consumed with it)`` from a position."""
        while True:
            if self.per_epoch:
                self.dataset.set_epoch(epoch)
            self.sampler.set_epoch(epoch, epoch_batches)
            self.generator.manual_seed(self.seed * 1_000_003 + epoch)
            for batch in self.loader:
                epoch_batches += 1
                yield batch, epoch, epoch_batches
            epoch, epoch_batches = epoch + 1, 0


def validation_loader(
    dataset: Dataset, batch_size: int, config: DictConfig, ctx: DistContext, device: torch.device
) -> DataLoader:
    """This process's shard of the validation set; each item of the loader is a list of batches."""
    return DataLoader(
        Subset(dataset, shard_indices(len(dataset), ctx)),
        batch_size=batch_size,
        collate_fn=collate_groups,
        generator=torch.Generator().manual_seed(int(config.trainer.seed)),
        **_loader_options(config, device),
    )
