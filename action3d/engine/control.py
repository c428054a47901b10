"""What the training loop checks without stopping the device at every micro-batch.

- `LossMeter` keeps the running loss and the first optimiser step whose loss was not finite on
  the device; the host reads them only every `trainer.log_every` steps and before each
  checkpoint save (`loss.item()` per micro-batch would wait for the device every time).
- `ControlFlags` shares the stop request (SIGTERM/SIGINT) and the timed-checkpoint decision
  across ranks with a non-blocking all-reduce: posted at one step boundary, read at the next, so
  every rank acts on the same step and no step waits for it.
"""
from __future__ import annotations

import time
from typing import Optional, Tuple

import torch
import torch.distributed as dist

from action3d.errors import Action3dError


class LossMeter:
    def __init__(self, device: torch.device):
        self.device = device
        self.reset()
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)  # first non-finite step

    def reset(self) -> None:
        self.total = torch.zeros((), dtype=torch.float64, device=self.device)
        self.count = 0

    def record(self, loss: torch.Tensor, step: int) -> None:
        """Add a micro-batch's loss (a device scalar), `step` the optimiser step it belongs to."""
        loss = loss.detach()
        finite = torch.isfinite(loss)
        self.total += torch.where(finite, loss.double(), 0.0)
        self.count += 1
        unseen = (self.first_bad < 0) & ~finite
        self.first_bad = torch.where(unseen, torch.full_like(self.first_bad, step), self.first_bad)

    def mean(self) -> float:
        """The mean finite loss since the last reset (one host sync), then reset."""
        value = self.total.item() / max(self.count, 1)
        self.reset()
        return value

    def raise_if_not_finite(self, *, epoch: int, kept: str) -> None:
        """One host sync (and one all-reduce under DDP): stop naming the first bad step on any rank."""
        bad = self.first_bad.clone()
        if dist.is_initialized():
            # -1 (all finite) loses to any step number under MAX; MIN over steps would pick -1.
            flag = torch.where(bad < 0, torch.full_like(bad, torch.iinfo(torch.int64).max), bad)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            bad = torch.where(flag == torch.iinfo(torch.int64).max, torch.full_like(bad, -1), flag)
        step = int(bad.item())
        if step >= 0:
            raise Action3dError(f"non-finite loss at step {step} (epoch {epoch}); stopped without saving it, {kept}; "
                                "lower optim.lr or set trainer.grad_clip")


class ControlFlags:
    """[stop requested, checkpoint due] agreed by every rank, one step late, without blocking."""

    def __init__(self, *, every_minutes: float, group: Optional[object] = None):
        self.every_seconds = every_minutes * 60.0
        self.last_save = time.monotonic()
        self.group = group
        self.distributed = dist.is_initialized()
        self._pending: Optional[Tuple[torch.Tensor, object]] = None

    def _due(self) -> bool:
        return self.every_seconds > 0 and time.monotonic() - self.last_save >= self.every_seconds

    def saved(self) -> None:
        """A checkpoint was just written: the timed interval starts again."""
        self.last_save = time.monotonic()

    def exchange(self, stop_requested: bool) -> Tuple[bool, bool]:
        """Post this rank's flags and return the flags agreed at the previous call (max over ranks).

        In a single process the answer is immediate. Under DDP it arrives one call later (the
        all-reduce runs while the next step computes); rank 0's clock decides when a timed
        checkpoint is due, so every rank saves at the same step.
        """
        mine = torch.tensor([float(stop_requested), float(self._due() and self._is_main())])
        if not self.distributed:
            return bool(mine[0]), bool(mine[1])
        agreed = (False, False)
        if self._pending is not None:
            flags, work = self._pending
            work.wait()
            agreed = (bool(flags[0] > 0), bool(flags[1] > 0))
        work = dist.all_reduce(mine, op=dist.ReduceOp.MAX, group=self.group, async_op=True)
        self._pending = (mine, work)
        return agreed

    def drain(self) -> None:
        """Wait for the last posted exchange (every rank must, before the group is destroyed)."""
        if self._pending is not None:
            self._pending[1].wait()
            self._pending = None

    @staticmethod
    def _is_main() -> bool:
        return not dist.is_initialized() or dist.get_rank() == 0
