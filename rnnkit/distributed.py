"""Data-parallel training on torch.distributed (DDP), started by torchrun.

    torchrun --nproc_per_node=4 -m rnnkit charlm train --data big.txt          # 4 GPUs (nccl) or 4 CPU processes (gloo)

Each process (rank) reads a disjoint slice of the B streams, DDP averages the gradients, and every
rank takes the same optimizer step. The training loop never checks the rank: it only sees sharded
batches, whose three collective methods keep it rank-agnostic:

    gather_state(state)   each rank's rows of the carried hidden state -> all B rows (for checkpoints)
    scatter_state(state)  all B rows -> this rank's rows (on resume, whatever the number of processes was)
    mean(value)           the average of a float over ranks (the logged loss is the global batch's)
    gather_objects(value) every rank's value (their RNG states, for checkpoints); this_process picks its own

Only rank 0 writes checkpoints and logs (commands/train.py). Because checkpoints hold the state of all B streams,
a run can resume with a different number of processes, as long as it divides B.

    global batch (B = 4 streams)    rank 0: rows 0-1     rank 1: rows 2-3
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from rnnkit.errors import RnnkitError
from rnnkit.recurrent import map_state


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank, how many there are, and its device."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> Context:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK), or run alone without it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Context(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"  # one GPU per process
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Context(rank, world_size, device)


@contextmanager
def main_first(context: Context) -> Iterator[None]:
    """Rank 0 runs the block first (building a file the others need, say), the other ranks after it."""
    if context.world_size > 1 and not context.is_main:
        dist.barrier()
    yield
    if context.world_size > 1 and context.is_main:
        dist.barrier()


def teardown(finished: bool) -> None:
    """Leave the process group. After a finished run every rank first waits for the others, so that none closes
    its connections while rank 0 still writes its last checkpoint and plot; after an error none waits (the
    others may never arrive, and torchrun stops them)."""
    if dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, context: Context) -> nn.Module:
    """DDP around the model when there are several processes (it averages gradients in backward)."""
    if context.world_size == 1:
        return model
    device_ids = [torch.device(context.device).index] if context.device.startswith("cuda") else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


class ShardedBatches:
    """This rank's rows of every batch of `batches` (any task's: each batch a tuple of (B, ...) tensors):
    rows [rank·b, (rank+1)·b), b = B / world_size."""

    def __init__(self, batches, context: Context):
        if batches.batch_size % context.world_size:
            raise RnnkitError(
                f"batch_size {batches.batch_size} must be divisible by the number of processes ({context.world_size})"
            )
        self.batches, self.context = batches, context
        self.carries_state = batches.carries_state
        self.batch_size = batches.batch_size // context.world_size  # rows per rank
        self.rows = slice(context.rank * self.batch_size, (context.rank + 1) * self.batch_size)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> tuple:
        return map_state(lambda tensor: tensor[self.rows], self.batches[k])  # each (B / world_size, ...)

    def gather_state(self, state: Any) -> Any:
        def gather(tensor: Tensor) -> Tensor:
            parts = [torch.empty_like(tensor) for _ in range(self.context.world_size)]
            dist.all_gather(parts, tensor.contiguous())
            return torch.cat(parts)  # (B, H): ranks in order

        return map_state(gather, state)

    def scatter_state(self, state: Any) -> Any:
        return map_state(lambda tensor: tensor[self.rows], state)

    def gather_objects(self, value) -> list:
        """Every rank's `value` (picklable), in rank order, on every rank."""
        values = [None] * self.context.world_size
        dist.all_gather_object(values, value)
        return values

    def this_process(self, values: list):
        """This rank's entry of a gathered list, or None when it was gathered by another number of processes."""
        return values[self.context.rank] if len(values) == self.context.world_size else None

    def mean(self, value: float) -> float:
        total = torch.tensor([value], dtype=torch.float64, device=self.context.device)
        dist.all_reduce(total)
        return float(total) / self.context.world_size

    def count_share(self, count: int) -> float:
        """W·n_r/N: what this rank's mean loss is weighted by so that DDP's average of the ranks' gradients is
        the gradient of the global batch's mean over all N positions (ranks may hold different numbers of
        valid positions: a tagger's words)."""
        total = torch.tensor([count], dtype=torch.float64, device=self.context.device)
        dist.all_reduce(total)
        return count * self.context.world_size / float(total) if float(total) else 1.0
