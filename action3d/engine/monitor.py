"""What the user sees of a run: TensorBoard scalars and hparams, metrics.jsonl, speed and
data-wait meters.

Only rank 0 creates a `RunLog` that writes; other ranks get one with `enabled=False`.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HParam = bool | int | float | str


class RunLog:
    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.writer = None
        self.jsonl = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))
            self.jsonl = open(run_dir / "metrics.jsonl", "a", buffering=1)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.jsonl.write(json.dumps({"step": step, "time": round(time.time(), 3), **values}) + "\n")

    def hparams(self, params: dict[str, HParam], metrics: dict[str, float], step: int) -> None:
        """TensorBoard's HParams view: this run's parameters and final metrics, written once at
        the end of a run into its tb/ events, so a sweep folder opened in TensorBoard lists one
        row per run (the view reads each metric from the run's scalar of the same name)."""
        if not self.enabled:
            return
        from torch.utils.tensorboard.summary import hparams

        writer = self.writer._get_file_writer()
        for summary in hparams(params, metrics):  # experiment, session start, session end
            writer.add_summary(summary)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def flush(self) -> None:
        if self.enabled:
            self.writer.flush()
            self.jsonl.flush()

    def close(self) -> None:
        if self.enabled:
            self.writer.close()
            self.jsonl.close()
            self.enabled = False


def run_hparams(cfg: Any, overrides: Sequence[str]) -> dict[str, HParam]:
    """The run's command-line overrides as TensorBoard hparams (`key -> value`): a sweep's swept
    keys among them. A value comes typed from the composed config (`optim.lr` a number); a
    group choice (`model=r3d_18`), a list or a null is shown as its text."""
    params: dict[str, HParam] = {}
    for override in overrides:
        key, _, text = override.lstrip("+~").partition("=")
        value = _select(cfg, key) if "/" not in key else None
        params[key] = value if isinstance(value, (bool, int, float, str)) else text
    return params


def _select(cfg: Any, key: str) -> Any:
    """The value of dotted `key` in a typed config (None where it has no such key)."""
    for part in key.split("."):
        cfg = getattr(cfg, part, None)
    return cfg


class StepTimer:
    """Clips/s and the share of wall time spent waiting for the data loader.

    `waited()` is called when a batch arrives, `stepped(n)` when its optimiser step is done.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.mark = time.perf_counter()
        self.wait = 0.0
        self.busy = 0.0
        self.clips = 0

    def waited(self) -> None:
        now = time.perf_counter()
        self.wait += now - self.mark
        self.mark = now

    def stepped(self, clips: int) -> None:
        now = time.perf_counter()
        self.busy += now - self.mark
        self.mark = now
        self.clips += clips

    @property
    def clips_per_s(self) -> float:
        total = self.wait + self.busy
        return self.clips / total if total > 0 else 0.0

    @property
    def wait_share(self) -> float:
        total = self.wait + self.busy
        return self.wait / total if total > 0 else 0.0


def data_wait_advice(share: float, threshold: float, num_workers: int) -> str | None:
    if share <= threshold:
        return None
    return (f"the model waited for data {share:.0%} of the time this epoch: raise data.num_workers "
            f"(now {num_workers}) or re-encode the dataset with `action3d data prepare` "
            "(smaller short side, short keyframe interval)")
