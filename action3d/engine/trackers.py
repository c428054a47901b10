"""Experiment trackers (`trainer.loggers`): one small class per tracker behind one interface.

Every tracker gets the same calls from `action3d.engine.monitor.RunLog`, on rank 0 only:

    tracker.start(run_dir, config, resume_id)   # -> this run's id in the tracker (kept for a resume)
    tracker.scalars(step, {"train/loss": 0.7})  # every logged point and validation
    tracker.hparams(params, metrics, step)      # once at the end: a sweep's swept keys, the best metric
    tracker.artifacts([best.pt, summary.json])  # once at the end
    tracker.flush()                             # with every checkpoint
    tracker.finish(status)                      # "finished", "stopped", "failed", ...

`start` raises `Action3dError` (one line) when the tracker cannot be reached: the run stops
before training. The other calls may raise anything; `RunLog` then warns once and drops that
tracker for the rest of the run, and training goes on.

- TensorBoard: `tb/` in the run directory (scalars; the HParams view at the end).
- MLflow: the tracking server or store of `MLFLOW_TRACKING_URI` (MLflow's default without it),
  the experiment `MLFLOW_EXPERIMENT_NAME` (created if missing; MLflow's default experiment
  without it), a run named after the run directory; the composed config flattened as params
  (`optim.lr`), the metrics with their step, the sweep's hparams as `hparam/KEY` params, and
  best.pt and summary.json as artifacts. Unless set, `MLFLOW_HTTP_REQUEST_MAX_RETRIES` and
  `MLFLOW_HTTP_REQUEST_TIMEOUT` are 0 and 10 s for the start (a server that is not there fails in
  seconds, not after MLflow's ~4 minutes of retries) and 2 and 30 s afterwards.
- W&B: `wandb.init` configured by the standard WANDB_* variables (WANDB_MODE=offline,
  WANDB_PROJECT, default project action3d, WANDB_ENTITY, WANDB_DIR, default the run directory);
  the composed config as the run's config, the metrics, the hparams in the config and the final
  metrics in the summary, best.pt and summary.json as a `model` artifact (an offline run also
  gets files/config.yaml and files/wandb-summary.json: `WandbTracker`).
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from action3d.errors import Action3dError, first_line

HParam = bool | int | float | str


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{"optim.lr": "0.04", ...}: a nested config's leaves as text (lists and None as written)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


class Tracker:
    """The interface; each method's default does nothing."""
    name = ""

    def start(self, run_dir: Path, config: Mapping[str, Any], resume_id: Optional[str]) -> Optional[str]:
        return None

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        pass

    def hparams(self, params: Mapping[str, HParam], metrics: Mapping[str, float], step: int) -> None:
        pass

    def artifacts(self, paths: Sequence[Path]) -> None:
        pass

    def flush(self) -> None:
        pass

    def finish(self, status: str) -> None:
        pass


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def start(self, run_dir, config, resume_id):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))
        return None

    def scalars(self, step, values):
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def hparams(self, params, metrics, step):
        """TensorBoard's HParams view: this run's parameters and final metrics, written once at
        the end of a run into its tb/ events, so a sweep folder opened in TensorBoard lists one
        row per run (the view reads each metric from the run's scalar of the same name)."""
        from torch.utils.tensorboard.summary import hparams

        writer = self.writer._get_file_writer()
        for summary in hparams(dict(params), dict(metrics)):  # experiment, session start, session end
            writer.add_summary(summary)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def finish(self, status):
        self.writer.close()


@contextlib.contextmanager
def _mlflow_requests(retries: int, timeout: int) -> Iterator[None]:
    """MLflow's HTTP retries and timeout for the calls inside, unless the user set them."""
    saved = {}
    for key, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", retries), ("MLFLOW_HTTP_REQUEST_TIMEOUT", timeout)):
        if key not in os.environ:
            saved[key] = value
            os.environ[key] = str(value)
    try:
        yield
    finally:
        for key in saved:
            os.environ.pop(key, None)


class MlflowTracker(Tracker):
    name = "mlflow"

    def start(self, run_dir, config, resume_id):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise Action3dError("trainer.loggers: mlflow is not installed; pip install 'action3d[trackers]'") from None
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        where = uri or "MLflow's default tracking store"
        try:
            with _mlflow_requests(retries=0, timeout=10):
                self.client = MlflowClient(tracking_uri=uri)
                if resume_id:
                    run = self.client.get_run(resume_id)
                    self.client.update_run(resume_id, status="RUNNING")
                    logged = set(run.data.params)
                else:
                    run = self.client.create_run(self._experiment_id(), run_name=run_dir.name,
                                                 tags={"action3d.run_dir": str(run_dir)})
                    logged = set()
                self.run_id = run.info.run_id
                self._log_params({k: v for k, v in flatten(config).items() if k not in logged})
        except Action3dError:
            raise
        except Exception as err:  # any failure to reach or use the tracking server
            raise Action3dError(f"trainer.loggers: mlflow could not start a run at {where}: "
                                f"{type(err).__name__}: {first_line(str(err))}") from None
        return self.run_id

    def _experiment_id(self) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
        if not name:
            return "0"  # MLflow's default experiment
        experiment = self.client.get_experiment_by_name(name)
        return experiment.experiment_id if experiment is not None else self.client.create_experiment(name)

    def _log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        if params:  # MLflow keeps at most 6000 characters of a value; the client sends 100 per request
            self.client.log_batch(self.run_id, params=[Param(k, v[:6000]) for k, v in params.items()])

    def scalars(self, step, values):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        with _mlflow_requests(retries=2, timeout=30):
            self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def hparams(self, params, metrics, step):
        with _mlflow_requests(retries=2, timeout=30):
            self._log_params({f"hparam/{k}": str(v) for k, v in params.items()})
        self.scalars(step, metrics)

    def artifacts(self, paths):
        with _mlflow_requests(retries=2, timeout=30):
            for path in paths:
                self.client.log_artifact(self.run_id, str(path))

    def finish(self, status):
        state = {"stopped": "KILLED", "failed": "FAILED"}.get(status, "FINISHED")
        with _mlflow_requests(retries=2, timeout=30):
            self.client.set_terminated(self.run_id, status=state)


class WandbTracker(Tracker):
    """wandb >= 0.18 (wandb-core) keeps an offline run in its transaction log (run-ID.wandb, what
    `wandb sync` uploads) and leaves files/config.yaml and files/wandb-summary.json to the sync
    (wandb/wandb#9646); an offline run here writes them at its end, as an online run has them:
    the config in W&B's `key: {value: ...}` layout, the summary as each metric's last value."""
    name = "wandb"

    def start(self, run_dir, config, resume_id):
        try:
            import wandb
        except ImportError:
            raise Action3dError("trainer.loggers: wandb is not installed; pip install 'action3d[trackers]'") from None
        self.wandb = wandb
        try:
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "action3d"), name=run_dir.name,
                                  dir=os.environ.get("WANDB_DIR", str(run_dir)), config=dict(config),
                                  id=resume_id, resume="allow" if resume_id else None, reinit="create_new")
        except Exception as err:  # no API key, no server, a bad WANDB_* value
            raise Action3dError(f"trainer.loggers: wandb could not start a run (WANDB_MODE="
                                f"{os.environ.get('WANDB_MODE', 'online')}): {type(err).__name__}: "
                                f"{first_line(str(err))}") from None
        self.run_dir = run_dir
        self.config, self.summary = dict(config), {}
        return self.run.id

    def scalars(self, step, values):
        self.run.log(dict(values), step=step)
        self.summary.update(values)

    def hparams(self, params, metrics, step):
        self.run.config.update({"hparams": dict(params)}, allow_val_change=True)
        self.run.summary.update(dict(metrics))
        self.config["hparams"] = dict(params)
        self.summary.update(metrics)

    def artifacts(self, paths):
        artifact = self.wandb.Artifact(re.sub(r"[^\w.-]", "_", self.run_dir.name) or "run", type="model")
        for path in paths:
            artifact.add_file(str(path))
        self.run.log_artifact(artifact)

    def finish(self, status):
        if status == "stopped":
            self.run.mark_preempting()
        offline, files = self.run.offline, Path(self.run.dir)
        self.run.finish(exit_code=1 if status == "failed" else 0)
        if offline:
            self._write_offline_files(files)

    def _write_offline_files(self, files: Path) -> None:
        import json

        import yaml

        if not (files / "config.yaml").exists():
            (files / "config.yaml").write_text(yaml.safe_dump({k: {"value": v} for k, v in self.config.items()}))
        if not (files / "wandb-summary.json").exists():
            (files / "wandb-summary.json").write_text(json.dumps(self.summary, indent=2))
