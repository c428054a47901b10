"""What the user sees of a run and what it is judged by: metrics.jsonl and the experiment
trackers (`RunLog`), the monitored validation metric with early stopping (`Monitor`), speed and
data-wait meters.

Only rank 0 creates a `RunLog` that writes; other ranks get one with `enabled=False`.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from action3d.engine.trackers import HParam, TensorBoardTracker, Tracker
from action3d.errors import Action3dError, first_line
from action3d.files import atomic_write

log = logging.getLogger("action3d")

TRACKER_IDS = "trackers.json"  # each tracker's run id, so that a resumed run continues the same run


class RunLog:
    """metrics.jsonl and the trackers (default: TensorBoard alone), started at once.

    config: the composed config (a nested dict) the trackers record; resume: continue the
    trackers' runs named in the run directory's trackers.json. A tracker that cannot start
    raises `Action3dError` (one line); one whose call fails later is warned about once and
    dropped, and the run goes on.
    """

    def __init__(self, run_dir: Path, enabled: bool, *, trackers: Optional[Sequence[Tracker]] = None,
                 config: Optional[Mapping[str, Any]] = None, resume: bool = False):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.trackers: list[Tracker] = []
        self.jsonl = None
        if not enabled:
            return
        ids_file = self.run_dir / TRACKER_IDS
        ids = json.loads(ids_file.read_text()) if resume and ids_file.exists() else {}
        for tracker in (TensorBoardTracker(),) if trackers is None else trackers:
            try:
                ids[tracker.name] = tracker.start(self.run_dir, config or {}, ids.get(tracker.name))
            except Exception:
                self._each("finish", "failed")  # those already started
                raise
            self.trackers.append(tracker)
        if any(ids.values()):
            atomic_write(ids_file, json.dumps(ids, indent=2))
        self.jsonl = open(self.run_dir / "metrics.jsonl", "a", buffering=1)

    def _each(self, call: str, *args: Any) -> None:
        """`tracker.call(*args)` on every tracker; a failing one is dropped with one warning."""
        for tracker in list(self.trackers):
            try:
                getattr(tracker, call)(*args)
            except Exception as err:  # a tracker's failure must not stop the training
                self.trackers.remove(tracker)
                log.warning("trainer.loggers: %s failed (%s: %s); it is off for the rest of this run", tracker.name,
                            type(err).__name__, first_line(str(err)))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self._each("scalars", step, values)
        self.jsonl.write(json.dumps({"step": step, "time": round(time.time(), 3), **values}) + "\n")

    def hparams(self, params: dict[str, HParam], metrics: dict[str, float], step: int) -> None:
        """Written once at the end of a run: its parameters (a sweep's swept keys) and final metrics."""
        if self.enabled:
            self._each("hparams", params, metrics, step)

    def artifacts(self, paths: Sequence[Path]) -> None:
        """Files the trackers keep with the run (best.pt, summary.json), once at the end."""
        paths = [p for p in paths if p.is_file()]
        if self.enabled and paths:
            self._each("artifacts", paths)

    def flush(self) -> None:
        if self.enabled:
            self._each("flush")
            self.jsonl.flush()

    def close(self, status: str = "finished") -> None:
        if self.enabled:
            self._each("finish", status)
            self.jsonl.close()
            self.enabled = False


class Monitor:
    """`trainer.monitor`: the validation metric that selects best.pt, and early stopping on it.

    name: top1 | map (higher is better) | loss (lower is better). Every improvement on the best
    value makes a new best.pt. Early stopping (patience > 0) counts the validations since the
    value last beat the reference by more than `min_delta`; the reference is the value of that
    validation. A NaN never improves. `state_dict` goes into every checkpoint, so a resumed run
    keeps the best value and the count.
    """

    def __init__(self, name: str, *, patience: int = 0, min_delta: float = 0.0):
        self.name, self.patience, self.min_delta = name, patience, min_delta
        self.best: Optional[float] = None
        self.best_epoch = -1
        self.best_metrics: dict[str, float] = {}
        self.reference: Optional[float] = None
        self.waited = 0                      # validations since the last improvement by more than min_delta

    @property
    def lower_is_better(self) -> bool:
        return self.name == "loss"

    def _beats(self, value: float, other: Optional[float], margin: float = 0.0) -> bool:
        if math.isnan(value):
            return False
        if other is None:
            return True
        return value < other - margin if self.lower_is_better else value > other + margin

    def improves(self, metrics: Mapping[str, float]) -> bool:
        """Whether these metrics beat the best (best.pt); no state changes."""
        return self._beats(metrics[self.name], self.best)

    def update(self, metrics: Mapping[str, float], epoch: int) -> bool:
        """Record a validation; True when it is the new best."""
        value = float(metrics[self.name])
        improved = self.improves(metrics)
        if improved:
            self.best, self.best_epoch = value, epoch
            self.best_metrics = {k: float(v) for k, v in metrics.items()}
        if self._beats(value, self.reference, self.min_delta):
            self.reference, self.waited = value, 0
        else:
            self.waited += 1
        return improved

    @property
    def exhausted(self) -> bool:
        """Early stopping's verdict: patience validations in a row without an improvement."""
        return 0 < self.patience <= self.waited

    def stop_reason(self) -> str:
        best = "n/a" if self.best is None else f"{self.best:.4g}"
        return (f"early stop: val {self.name} did not improve by more than {self.min_delta:g} for {self.waited} "
                f"validations (trainer.early_stop_patience={self.patience}); best {best} at epoch {self.best_epoch}")

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "best": self.best, "best_epoch": self.best_epoch,
                "best_metrics": self.best_metrics, "reference": self.reference, "waited": self.waited}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["name"] != self.name:
            raise Action3dError(f"trainer.monitor={self.name} but the checkpoint chose best.pt by "
                                f"{state['name']}; resume with trainer.monitor={state['name']}")
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_metrics = dict(state["best_metrics"])
        self.reference, self.waited = state["reference"], state["waited"]


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
