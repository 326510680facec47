"""Data-parallel training over torch.distributed: the process group that torchrun describes, each rank's
shard of a global batch, and the collectives the training loop needs. One process is a world of size 1."""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from vaezoo.errors import VaezooError


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a run, and the device it trains on."""

    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    grouped: bool = False  # in a torch.distributed process group (under torchrun, even with one process)

    @property
    def main(self) -> bool:
        """Whether this rank writes the run's files (rank 0)."""
        return self.rank == 0

    def shard(self, rows: int) -> tuple[int, int]:
        """[start, stop) of this rank's contiguous share of `rows` rows (shares differ by at most one row)."""
        return rows * self.rank // self.size, rows * (self.rank + 1) // self.size

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """values summed over the ranks (in place; returned for convenience)."""
        if self.grouped:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Every parameter's gradient summed over the ranks, in one collective. A parameter that has no gradient
        on any rank keeps none (as in one process, where the optimizer then leaves it alone)."""
        if not self.grouped:
            return
        params = list(parameters)
        grads = [torch.zeros_like(p).reshape(-1) if p.grad is None else p.grad.reshape(-1) for p in params]
        has_grad = torch.tensor([float(p.grad is not None) for p in params], device=self.device)
        flat = self.sum(torch.cat([*grads, has_grad]))
        sums, ranks_with_grad = flat[: -len(params)], flat[-len(params) :].tolist()
        for p, g, n in zip(params, sums.split([p.numel() for p in params]), ranks_with_grad):
            p.grad = g.view_as(p).to(p.dtype) if n > 0 else None

    def all_agree(self, ok: bool) -> bool:
        """True when `ok` holds on every rank (each rank must call it)."""
        flag = self.sum(torch.tensor([0.0 if ok else 1.0], device=self.device))
        return bool(flag.item() == 0)

    def close(self) -> None:
        """Leave the process group (no-op for one process)."""
        if self.grouped and dist.is_initialized():
            dist.destroy_process_group()


def join(device: str) -> World:
    """The world torchrun set up (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT in the environment):
    gloo on the CPU, nccl on CUDA with rank r on cuda:LOCAL_RANK. Without torchrun, a world of one process."""
    if "WORLD_SIZE" not in os.environ:
        return World(device=torch.device(device))
    if dist.is_initialized():
        raise VaezooError("a torch.distributed process group is already initialized in this process")
    if device.startswith("cuda"):
        if device != "cuda":
            raise VaezooError(f"under torchrun, pass --device cuda (rank r uses cuda:LOCAL_RANK), not {device!r}")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise VaezooError(
                f"LOCAL_RANK {local_rank} has no GPU: {torch.cuda.device_count()} visible; "
                "start at most that many processes per machine"
            )
        where = torch.device("cuda", local_rank)
        torch.cuda.set_device(where)
        dist.init_process_group("nccl", device_id=where)
    else:
        where = torch.device("cpu")
        dist.init_process_group("gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), device=where, grouped=True)
