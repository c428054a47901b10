"""The Trainer: the training loop, readable top to bottom.

setup (seed, precision) -> data -> loss -> model -> optimiser/schedule -> resume -> trackers ->
for each epoch: micro-batches (normalise on device, [mixup/CutMix], autocast, backward; an
optimiser step every `accum_steps`) -> [timed last.pt] -> precise BN + validation when due ->
checkpoints (best.pt by trainer.monitor, epoch_N.pt, last.pt) -> [early stop] -> summary.json.

A library class: it gets the run directory and the seed as arguments (the command passes
`cfg.trainer.seed`; nothing here reads it), raises `Action3dError` and never exits. Single
process and torchrun run the same code; only rank 0 writes files and draws progress.

    trainer = Trainer(cfg, run_dir=Path("runs/a"), seed=0)
    summary = trainer.fit()        # {"status": "finished", "monitor": "top1", "best_value": 0.9, ...}
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from tqdm import tqdm

from action3d.config import ModelConfig, TrainConfig
from action3d.config import runtime as rules
from action3d.config.train import monitored
from action3d.config.validation import check_values
from action3d.engine import distributed as dist_utils
from action3d.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from action3d.engine.control import ControlFlags, LossMeter
from action3d.engine.data import build_train_val, train_loader, training_batch
from action3d.engine.faults import maybe_fault
from action3d.engine.loss import Criterion, label_matrix, positive_weights, sample_labels
from action3d.engine.mixup import BatchMixer
from action3d.engine.monitor import Monitor, RunLog, StepTimer, data_wait_advice, run_hparams
from action3d.engine.optim import build_optimizer, build_scheduler
from action3d.engine.precise_bn import has_batch_norm, recompute_bn_stats
from action3d.engine.precision import autocast, grad_scaler, precision_warning, resolve_precision
from action3d.engine.sampler import inverse_frequency_weights
from action3d.engine.signals import StopRequest
from action3d.engine.trackers import MlflowTracker, TensorBoardTracker, WandbTracker
from action3d.engine.validate import validate
from action3d.errors import Action3dError
from action3d.files import atomic_write
from action3d.models import build_model

log = logging.getLogger("action3d")

# trainer.loggers: each choice's tracker (action3d.engine.trackers)
TRACKERS = {"tensorboard": TensorBoardTracker, "mlflow": MlflowTracker, "wandb": WandbTracker}


class Trainer:
    """Trains `cfg` (the typed train config: model, data, optim, sched, trainer sections; its
    rules are checked here unless the command line already checked it).

    run_dir: where checkpoints, logs and summary.json go (the same folder on every rank).
    seed: seeds the weights' initialisation, the sampler's order and every sample's augmentation.
    env: the process group (default: one process on cfg.trainer.device). stop: a `StopRequest`
    whose flag makes the loop save `last.pt` and return. overrides: the command-line overrides,
    recorded in summary.json for sweep tables.
    """

    def __init__(self, cfg: TrainConfig, *, run_dir: Path, seed: int,
                 env: Optional[dist_utils.DistEnv] = None, stop: Optional[StopRequest] = None,
                 overrides: Sequence[str] = ()):
        check_values(cfg, "train")
        self.cfg, self.seed, self.overrides = cfg, seed, list(overrides)
        self.env = env or dist_utils.DistEnv.single(dist_utils.pick_device(cfg.trainer.device))
        rules.check_sync_bn(cfg.trainer.sync_bn, device_type=self.env.device.type)  # before anything is written
        self.stop = stop or StopRequest()
        self.device = self.env.device
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.precision, precision_why = resolve_precision(cfg.trainer.precision, self.device)
        torch.manual_seed(seed)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        self.train_set, self.val_set, self.classes, self.data_cfg = build_train_val(cfg.data, self.env, seed=seed)
        self.loader = train_loader(self.train_set, self.data_cfg, self.env, seed=seed)
        # Whole accumulation groups only: leftover micro-batches would leak their gradients into
        # the next epoch's first step (and a resume at the epoch boundary would differ).
        self.steps_per_epoch = len(self.loader) // cfg.trainer.accum_steps
        if self.steps_per_epoch < 1:
            raise Action3dError(f"trainer.accum_steps={cfg.trainer.accum_steps} is more than the {len(self.loader)} "
                                f"batches of an epoch (data.batch_size={self.data_cfg.batch_size}, "
                                f"{len(self.train_set)} training videos); lower it")
        self.batches_per_epoch = self.steps_per_epoch * cfg.trainer.accum_steps
        multi_label = self.data_cfg.multi_label
        self.criterion = Criterion(multi_label=multi_label, label_smoothing=cfg.trainer.label_smoothing,
                                   weight=self._class_weights())
        self.mixer = BatchMixer.from_config(self.data_cfg, num_classes=len(self.classes), seed=seed,
                                            rank=self.env.rank)                 # None: no mixing
        self.monitor = Monitor(monitored(cfg.trainer, multi_label), patience=cfg.trainer.early_stop_patience,
                               min_delta=cfg.trainer.early_stop_min_delta)

        self.model_cfg = self._model_config()
        self.model = self._build_model()
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.sched, steps_per_epoch=self.steps_per_epoch,
                                         max_epochs=cfg.trainer.max_epochs, base_lr=cfg.optim.lr)
        self.scaler = grad_scaler(self.precision, self.device)
        self.ddp_model = self._wrap(self.model)
        # Every rank built the same initial weights from `seed`; from here each rank draws its
        # own dropout masks (as timm does), so the ranks' random states differ.
        torch.manual_seed(seed + self.env.rank)

        self.epoch, self.step, self.batch_in_epoch = 0, 0, 0
        self.resumed = False
        self.failed_files: set = set()       # unreadable training videos (summary.json)
        self.failed_val_files: set = set()
        self.losses = LossMeter(self.device)
        self.flags = ControlFlags(every_minutes=cfg.trainer.ckpt_every_minutes, group=self.env.control_group)
        if self.env.is_main:
            log.info("data: %s (data.format=%s), %d training videos, %s validation videos, %d classes",
                     self.data_cfg.name, self.data_cfg.format, len(self.train_set),
                     len(self.val_set) if self.val_set is not None else "no", len(self.classes))
            log.info("precision: %s", precision_why)
            warning = precision_warning(self.precision, self.device)
            if warning:
                log.warning(warning)
        self._maybe_resume()
        self.log = self._run_log()

    # ------------------------------------------------------------------ setup

    def _class_weights(self) -> Optional[torch.Tensor]:
        """trainer.class_weights=auto: the softmax loss weighs each class by its inverse training
        frequency; under multi-label each class's positives weigh its negatives / positives."""
        if self.cfg.trainer.class_weights != "auto":
            return None
        labels = sample_labels(self.train_set.samples)
        if self.data_cfg.multi_label:
            return positive_weights(label_matrix(labels, len(self.classes))).to(self.device)
        return inverse_frequency_weights(labels, len(self.classes)).to(self.device)

    def _model_config(self) -> ModelConfig:
        model_cfg = self.cfg.model
        if model_cfg.num_classes is None:
            model_cfg = dataclasses.replace(model_cfg, num_classes=len(self.classes))
        elif model_cfg.num_classes != len(self.classes):
            raise Action3dError(f"model.num_classes={model_cfg.num_classes} but the dataset has "
                                f"{len(self.classes)} classes; leave model.num_classes unset to take the dataset's")
        return model_cfg

    def _build_model(self) -> nn.Module:
        model = build_model(self.model_cfg, classes=self.classes)
        if self.cfg.trainer.sync_bn and self.env.distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        if self.cfg.trainer.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        return model

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.env.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if self.cfg.trainer.compile:
            model = torch.compile(model)
        return model

    def _maybe_resume(self) -> None:
        resume = self.cfg.trainer.resume
        if not resume:
            return
        path = self.run_dir / "last.pt" if resume == "auto" else Path(resume)
        if resume == "auto" and not path.exists():
            if self.env.is_main:
                log.info("trainer.resume=auto: no %s yet, starting a new run", path)
            return
        state = load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.batch_in_epoch = state["epoch"], state["step"], state["batch_in_epoch"]
        if "monitor" in state:
            self.monitor.load_state_dict(state["monitor"])
        elif self.monitor.name == "top1" and state["best_top1"] >= 0:  # written before trainer.monitor
            self.monitor.best, self.monitor.best_epoch = state["best_top1"], state["best_epoch"]
            self.monitor.best_metrics, self.monitor.reference = {"top1": state["best_top1"]}, state["best_top1"]
        set_rng_state(self._own_rng_state(state, path))
        self.resumed = True
        if self.env.is_main:
            log.info("resumed from %s: epoch %d, step %d (batch %d of the epoch)", path, self.epoch,
                     self.step, self.batch_in_epoch)

    def _own_rng_state(self, state: Dict[str, Any], path: Path) -> Dict[str, Any]:
        """This rank's RNG states from the checkpoint (each rank draws its own dropout masks)."""
        per_rank = state.get("rng_per_rank") or [state["rng"]]
        if len(per_rank) == self.env.world_size:
            return per_rank[self.env.rank]
        if self.env.is_main:
            log.warning("%s was written by %d processes and this run has %d: every rank continues from rank 0's "
                        "random state (the run is no longer bit-identical to an uninterrupted one)",
                        path, len(per_rank), self.env.world_size)
        return per_rank[0]

    # ------------------------------------------------------------------ loop

    def fit(self) -> Dict[str, Any]:
        if self.env.is_main:
            self._write_run_info()
            log.info("run directory: %s", self.run_dir)
        status = "finished"
        try:
            while self.epoch < self.cfg.trainer.max_epochs:
                if self.monitor.exhausted:  # early stopping; checked first: a resumed run keeps the count
                    status = "early_stopped"
                    break
                status = self.train_epoch()
                if status == "stopped":
                    break
                if status == "max_steps":
                    self._validate_on_a_copy()
                    break
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                metrics = self._maybe_validate()
                self._save_epoch_checkpoints(metrics)
                if self._max_steps_reached():
                    status = "max_steps"
                    break
                status = "finished"
        except BaseException:
            self.log.close("failed")  # the trackers mark the run failed; the error goes on up
            raise
        self.flags.drain()
        return self._finish(status)

    def train_epoch(self) -> str:
        """The rest of this epoch's micro-batches: 'epoch_done', 'stopped' or 'max_steps'."""
        cfg, env = self.cfg.trainer, self.env
        self.loader.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * self.loader.batch_size)
        self.ddp_model.train()
        timer = StepTimer()
        bar = tqdm(total=self.batches_per_epoch, initial=self.batch_in_epoch,
                   desc=f"epoch {self.epoch + 1}/{cfg.max_epochs}", disable=not env.is_main,
                   dynamic_ncols=True, mininterval=1.0, leave=False)
        status = "epoch_done"
        for batch in self._batches(bar):
            if batch is None:
                status = "stopped"
                break
            timer.waited()
            self.train_step(batch)
            timer.stepped(batch[0].shape[0] * env.world_size)
            bar.update(1)
            if self.batch_in_epoch % cfg.accum_steps:
                continue
            if self.step % cfg.log_every == 0:  # the only regular host sync: loss, finiteness
                self._log_train(timer, bar)
            if self._max_steps_reached():
                status = "max_steps"
                break
        bar.close()
        if status == "epoch_done":
            self._end_of_epoch_report(timer)
        return status

    def _batches(self, bar: tqdm):
        """This epoch's remaining micro-batches; None when a stop was agreed (at a step boundary).

        At each optimiser-step boundary the ranks exchange their stop flags and rank 0's
        checkpoint clock without blocking; a timed `last.pt` is written there.
        """
        batches = iter(self.loader)
        while self.batch_in_epoch < self.batches_per_epoch:
            if self.batch_in_epoch % self.cfg.trainer.accum_steps == 0:
                stop, checkpoint_due = self.flags.exchange(self.stop.requested)
                if stop:
                    yield None
                    return
                if checkpoint_due:
                    self._save_last("timed")
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception:
                if self.stop.requested:  # workers were interrupted by the same signal
                    yield None
                    return
                raise
            yield batch

    def train_step(self, batch) -> None:
        """One micro-batch: forward, backward; an optimiser step every `accum_steps` micro-batches.

        No host sync here: the loss stays on the device (`LossMeter`) until the next log point.
        """
        cfg = self.cfg.trainer
        clips, targets = self._device_clips(batch)        # targets: class indices, or multi-hot rows
        if self.mixer is not None:  # mixup/CutMix within this rank's batch, drawn from (seed, epoch, micro-batch, rank)
            clips, targets = self.mixer(clips, targets, epoch=self.epoch, micro_batch=self.batch_in_epoch)
        self.batch_in_epoch += 1
        boundary = self.batch_in_epoch % cfg.accum_steps == 0
        sync = nullcontext() if boundary or not self.env.distributed else self.ddp_model.no_sync()
        with sync:
            with autocast(self.precision, self.device):
                logits = self.ddp_model(clips)                                  # (N*K, num_classes)
                loss = self.criterion(logits, targets)   # softmax CE or BCE, smoothed, class-weighted
            self.losses.record(loss, self.step + 1)
            self.scaler.scale(loss / cfg.accum_steps).backward()
        maybe_fault("train_step")
        if boundary:
            self._optimizer_step()

    def _device_clips(self, batch) -> Tuple[torch.Tensor, torch.Tensor]:
        return training_batch(batch, self.data_cfg, self.device, channels_last=self.cfg.trainer.channels_last)

    def _optimizer_step(self) -> None:
        if self.cfg.trainer.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.trainer.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    def _max_steps_reached(self) -> bool:
        return 0 < self.cfg.trainer.max_steps <= self.step

    def _kept_checkpoint(self) -> str:
        last = self.run_dir / "last.pt"
        return f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"

    # ------------------------------------------------------------------ logging, validation, checkpoints

    def _log_train(self, timer: StepTimer, bar: tqdm) -> None:
        self.losses.raise_if_not_finite(epoch=self.epoch + 1, kept=self._kept_checkpoint())
        loss = self.losses.mean()
        lr = self.optimizer.param_groups[0]["lr"]
        values = {"train/loss": loss, "train/lr": lr, "train/clips_per_s": timer.clips_per_s,
                  "train/data_wait": timer.wait_share}
        self.log.scalars(self.step, values)
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.3g}", clips_s=f"{timer.clips_per_s:.1f}",
                        wait=f"{timer.wait_share:.0%}", refresh=False)

    def _gather_failures(self, dataset, seen: set) -> List[Tuple[str, str]]:
        """Unreadable files met by every rank since the last call; rank 0 names each new one once
        (in train.log), whichever rank met it, and adds it to `seen`."""
        parts = dist_utils.all_gather_objects(dataset.drain_failures(log_new=False))
        failures = [f for part in parts for f in part]
        if self.env.is_main:
            for path, reason in failures:
                if path not in seen:
                    log.warning("skipping unreadable video %s", reason)
                seen.add(path)
        return failures

    def _end_of_epoch_report(self, timer: StepTimer) -> None:
        failures = self._gather_failures(self.train_set, self.failed_files)
        if not self.env.is_main:
            return
        if failures:
            log.warning("epoch %d: %d unreadable samples replaced (%d distinct files so far)",
                        self.epoch + 1, len(failures), len(self.failed_files))
        self.log.scalars(self.step, {"train/failed_samples": float(len(failures))})
        advice = data_wait_advice(timer.wait_share, self.cfg.trainer.data_wait_warn, self.loader.num_workers)
        if advice:
            log.warning(advice)

    def _precise_bn(self, model: nn.Module) -> None:
        """Running BN statistics of the current weights (PySlowFast's precise BN), from the first
        batches of the next epoch's order."""
        count = self.cfg.trainer.precise_bn_batches
        if count <= 0 or not has_batch_norm(model):
            return
        self.loader.sampler.set_epoch(self.epoch)

        def batches():
            for i, batch in enumerate(self.loader):
                if i >= count:
                    return
                yield self._device_clips(batch)[0]

        with autocast(self.precision, self.device):  # the statistics of the precision validation runs in
            recompute_bn_stats(model, batches())

    def _validation_due(self) -> bool:
        return self.val_set is not None and (self.epoch % self.cfg.trainer.val_every == 0
                                             or self.epoch == self.cfg.trainer.max_epochs)

    def _maybe_validate(self) -> Optional[Dict[str, float]]:
        if not self._validation_due():
            return None
        self._precise_bn(self.model)
        return self._validate(self.model)

    def _validate(self, model: nn.Module) -> Dict[str, float]:
        maybe_fault("validate")
        metrics = validate(model, self.val_set, self.data_cfg, self.env, precision=self.precision,
                           channels_last=self.cfg.trainer.channels_last)
        self._gather_failures(self.val_set, self.failed_val_files)
        if self.env.is_main:
            self.log.scalars(self.step, {f"val/{key}": metrics[key] for key in ("top1", "top5", "map", "loss")
                                         if key in metrics})
            scores = (f"mAP {100 * metrics['map']:.2f}%" if "map" in metrics else
                      f"top-1 {100 * metrics['top1']:.2f}%, top-5 {100 * metrics['top5']:.2f}%")
            log.info("epoch %d: val %s, loss %.4f (%d videos%s)", self.epoch, scores, metrics["loss"],
                     metrics["videos"], f", {metrics['failed']} unreadable" if metrics["failed"] else "")
        return metrics

    def _validate_on_a_copy(self) -> None:
        """A run cut short by trainer.max_steps still gets a metric (a sweep trial needs one).

        Precise BN and validation run on a copy with the random state restored afterwards, so
        last.pt holds exactly what an uninterrupted run has at this step (resume stays exact).
        """
        if self.val_set is None:
            return
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            model = copy.deepcopy(self.model)
            self._precise_bn(model)
            metrics = self._validate(model)
        if self.monitor.update(metrics, self.epoch):
            self._save({"best.pt"}, model=model)  # the weights that scored, with their BN statistics

    def _save_epoch_checkpoints(self, metrics: Optional[Dict[str, float]]) -> None:
        """best.pt when trainer.monitor improved (every epoch without validation), epoch_N.pt, last.pt.
        The monitor (best value, early stopping's count) is recorded first: last.pt carries it."""
        improved = metrics is not None and self.monitor.update(metrics, self.epoch)
        names = set()
        if improved or self.val_set is None:
            names.add("best.pt")
        every = self.cfg.trainer.ckpt_every
        if every and self.epoch % every == 0:
            names.add(f"epoch_{self.epoch}.pt")
        self._save(names | {"last.pt"})

    def _save_last(self, why: str) -> None:
        self._save({"last.pt"})
        if self.env.is_main:
            log.info("%s checkpoint: saved %s at epoch %d, batch %d", why, self.run_dir / "last.pt", self.epoch + 1,
                     self.batch_in_epoch)

    def _save(self, names: set, *, model: Optional[nn.Module] = None) -> None:
        """Write the named checkpoints (every rank takes part: the state holds each rank's RNG).

        Never saves a non-finite state: the loss check runs first. last.pt is written last:
        trainer.resume=auto trusts it, so every file it vouches for is on disk before it.
        """
        self.losses.raise_if_not_finite(epoch=self.epoch + 1, kept=self._kept_checkpoint())
        state = self.state(model=model)
        if self.env.is_main:
            for name in sorted(names - {"last.pt"}) + (["last.pt"] if "last.pt" in names else []):
                save_checkpoint(state, self.run_dir / name)
            self.log.flush()
        if "last.pt" in names:
            self.flags.saved()

    def state(self, *, model: Optional[nn.Module] = None) -> Dict[str, Any]:
        """Everything a resume needs; every rank must call it (it gathers the ranks' RNG states)."""
        rng_per_rank = dist_utils.all_gather_objects(rng_state())
        return {
            "format": "action3d-checkpoint-v1",
            "model": (model or self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "sampler_epoch": self.loader.sampler.epoch,
            "rng": rng_per_rank[0],
            "rng_per_rank": rng_per_rank,
            "config": dataclasses.asdict(self._resolved_config()),
            "classes": list(self.classes),
            "best_top1": self.monitor.best_metrics.get("top1", -1.0),  # val top-1 of best.pt (-1: none yet)
            "best_epoch": self.monitor.best_epoch,
            "monitor": self.monitor.state_dict(),                        # best value, early stopping's count
        }

    def _resolved_config(self) -> TrainConfig:
        return dataclasses.replace(self.cfg, model=self.model_cfg, data=self.data_cfg)

    def _finish(self, status: str) -> Dict[str, Any]:
        if status in ("stopped", "max_steps"):
            self._save({"last.pt"})
        if status == "stopped" and self.env.is_main:
            log.warning("%s received: saved %s at epoch %d, batch %d; continue with trainer.resume=auto "
                        "hydra.run.dir=%s", self.stop.signal_name, self.run_dir / "last.pt", self.epoch + 1,
                        self.batch_in_epoch, self.run_dir)
        best = self.run_dir / "best.pt"
        monitor = self.monitor
        summary = {"status": status, "stop_reason": self._stop_reason(status), "monitor": monitor.name,
                   "best_value": monitor.best, "best_top1": monitor.best_metrics.get("top1"),
                   "best_epoch": monitor.best_epoch, "epochs": self.epoch, "steps": self.step,
                   "checkpoint": str(best if best.exists() else self.run_dir / "last.pt"),
                   "run_dir": str(self.run_dir), "overrides": self.overrides,
                   "precision": self.precision, "failed_files": sorted(self.failed_files)}
        if self.env.is_main:
            atomic_write(self.run_dir / "summary.json", json.dumps(summary, indent=2))
            if status != "stopped":  # a resumed run writes them when it ends
                metrics = {f"hparam/best_{monitor.name}": monitor.best} if monitor.best is not None else {}
                self.log.hparams(run_hparams(self.cfg, self.overrides), metrics, self.step)
                self.log.artifacts([best, self.run_dir / "summary.json"])
            self.log.close(status)
            log.info("run ended: %s", summary["stop_reason"])  # the last line of train.log says why
        return summary

    def _stop_reason(self, status: str) -> str:
        if status == "early_stopped":
            return self.monitor.stop_reason()
        if status == "stopped":
            return f"{self.stop.signal_name} received; continue with trainer.resume=auto"
        if status == "max_steps":
            return f"trainer.max_steps={self.cfg.trainer.max_steps} reached"
        return f"trainer.max_epochs={self.cfg.trainer.max_epochs} reached"

    def _run_log(self) -> RunLog:
        """Rank 0's metrics.jsonl and trackers (trainer.loggers). A tracker that cannot start stops
        every rank here, before training, with rank 0's one line."""
        run_log, error = RunLog(self.run_dir, enabled=False), None
        if self.env.is_main:
            try:
                run_log = RunLog(self.run_dir, enabled=True, resume=self.resumed,
                                 trackers=[TRACKERS[name]() for name in self.cfg.trainer.loggers],
                                 config=dataclasses.asdict(self._resolved_config()))
            except Action3dError as err:
                error = str(err)
        error = dist_utils.broadcast_object(error)
        if error:
            raise Action3dError(error)
        return run_log

    def _write_run_info(self) -> None:
        atomic_write(self.run_dir / "classes.txt", "\n".join(self.classes) + "\n")
