"""torchrun-aware process group setup and the few collectives the engine needs.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT; without them we run as a
single process and every helper here degrades to a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from action3d.config import runtime as rules


@dataclass
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    # A gloo group for small CPU-side agreements (stop flag, checkpoint timing) that must not wait
    # for the device; None: the default group is gloo already (or there is no group).
    control_group: Optional[Any] = None

    @classmethod
    def single(cls, device: torch.device) -> DistEnv:
        """One process, no process group."""
        return cls(rank=0, world_size=1, local_rank=0, device=device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """trainer.device (auto | cpu | cuda) -> this process's device (`cuda:LOCAL_RANK` under torchrun)."""
    cuda = torch.cuda.is_available()
    rules.check_device(preference, cuda_available=cuda)
    if rules.resolve_device_type(preference, cuda_available=cuda) == "cuda":
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device_preference: str = "auto") -> DistEnv:
    """Join the torchrun process group (NCCL on CUDA, gloo on CPU) when WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    control = None
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None,
                                **_attempt_store(rank, world_size))
        if backend == "nccl":
            control = dist.new_group(backend="gloo")
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device, control_group=control)


def _attempt_store(rank: int, world_size: int) -> dict:
    """Under torchrun, the process group's keys in a namespace of this restart attempt.

    After an elastic restart the new processes meet in the store the old ones used; without a
    namespace of their own they can read the addresses the dead attempt left there and wait for
    peers that are gone (seen as a hang or "Connection refused" in gloo's full-mesh connect).
    """
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None or "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        return {}
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size,
                          is_master=(rank == 0 and not agent_hosts_it))
    return {"store": dist.PrefixStore(f"action3d/attempt_{attempt}", store), "rank": rank,
            "world_size": world_size}


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj: Any) -> List[Any]:
    if not dist.is_initialized():
        return [obj]
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is true on at least one (used for stop signals)."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


class ShardSampler(Sampler[int]):
    """Every index exactly once over all ranks (rank r takes r, r+W, ...), no padding.

    Unlike DistributedSampler this never duplicates samples, so evaluation counts each video
    once whatever the number of videos and processes; results are gathered and sorted by index.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
