"""Devices, data-parallel processes and how the data is split between them.

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
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from mstt.errors import MsttError


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when a GPU is visible, else CPU; ``cuda``/``cuda:N`` must exist."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise MsttError(
                f"trainer.device: {spec} asked for but no GPU is visible; use trainer.device=auto or cpu"
            )
        device = torch.device(spec)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MsttError(
                f"trainer.device: {spec} asked for but only {torch.cuda.device_count()} GPU(s) are visible"
            )
        return device
    raise MsttError(f"trainer.device: '{spec}' is not a device; use auto, cpu, cuda or cuda:N")


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


def teardown(ctx: DistContext) -> None:
    """Leave the process group if ``setup`` created it."""
    if ctx.owns_group and dist.is_initialized():
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
