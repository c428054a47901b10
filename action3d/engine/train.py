"""The Trainer: the training loop, readable top to bottom.

setup (seed, precision) -> data -> model -> optimiser/schedule -> resume ->
for each epoch: train steps (normalise on device, autocast, backward, step) -> validate ->
checkpoint (last.pt, best.pt, epoch_N.pt) -> summary.json.

A library class: it gets the run directory and the seed as arguments (the command passes
`cfg.trainer.seed`; nothing here reads it), raises `Action3dError` and never exits. Single
process and torchrun run the same code; only rank 0 writes files and draws progress.

    trainer = Trainer(cfg, run_dir=Path("runs/a"), seed=0)
    summary = trainer.fit()        # {"status": "finished", "best_top1": 0.9, ...}
"""
from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from action3d.config import rules
from action3d.engine import distributed as dist_utils
from action3d.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from action3d.engine.data import build_train_val, device_batch, train_loader
from action3d.engine.faults import maybe_fault
from action3d.engine.monitor import RunLog, StepTimer, data_wait_advice
from action3d.engine.optim import build_optimizer, build_scheduler
from action3d.engine.precise_bn import recompute_bn_stats
from action3d.engine.precision import autocast, grad_scaler, precision_warning, resolve_precision
from action3d.engine.signals import StopRequest
from action3d.engine.validate import validate
from action3d.errors import Action3dError
from action3d.files import atomic_write
from action3d.models import build_model

log = logging.getLogger("action3d")


class Trainer:
    """Trains `cfg` (a composed train config: model, data, optim, sched, trainer sections).

    run_dir: where checkpoints, logs and summary.json go (the same folder on every rank).
    seed: seeds the weights' initialisation, the sampler's order and every sample's augmentation.
    env: the process group (default: one process on cfg.trainer.device). stop: a `StopRequest`
    whose flag makes the loop save `last.pt` and return. overrides: the command-line overrides,
    recorded in summary.json for sweep tables.
    """

    def __init__(self, cfg: DictConfig, *, run_dir: Path, seed: int,
                 env: Optional[dist_utils.DistEnv] = None, stop: Optional[StopRequest] = None,
                 overrides: Sequence[str] = ()):
        self.cfg, self.seed, self.overrides = cfg, seed, list(overrides)
        self.env = env or dist_utils.DistEnv(0, 1, 0, dist_utils.pick_device(cfg.trainer.device))
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
        self.steps_per_epoch = max(1, len(self.loader) // cfg.trainer.accum_steps)

        self.model_cfg = self._model_config()
        self.model = self._build_model()
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.sched, steps_per_epoch=self.steps_per_epoch,
                                         max_epochs=cfg.trainer.max_epochs, base_lr=cfg.optim.lr)
        self.scaler = grad_scaler(self.precision, self.device)
        self.ddp_model = self._wrap(self.model)

        self.epoch, self.step, self.batch_in_epoch = 0, 0, 0
        self.best_top1, self.best_epoch = -1.0, -1
        self.failed_files: set = set()
        self.log = RunLog(self.run_dir, enabled=self.env.is_main)
        if self.env.is_main:
            log.info("precision: %s", precision_why)
            warning = precision_warning(self.precision, self.device)
            if warning:
                log.warning(warning)
        self._maybe_resume()

    # ------------------------------------------------------------------ setup

    def _model_config(self) -> DictConfig:
        model_cfg = self.cfg.model.copy()
        if model_cfg.num_classes is None:
            model_cfg.num_classes = len(self.classes)
        elif model_cfg.num_classes != len(self.classes):
            raise Action3dError(f"model.num_classes={model_cfg.num_classes} but the dataset has "
                                f"{len(self.classes)} classes; leave model.num_classes unset to take the dataset's")
        return model_cfg

    def _build_model(self) -> nn.Module:
        rules.check_sync_bn(self.cfg.trainer.sync_bn, device_type=self.device.type)
        model = build_model(self.model_cfg)
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
        self.best_top1, self.best_epoch = state["best_top1"], state["best_epoch"]
        set_rng_state(state["rng"])
        if self.env.is_main:
            log.info("resumed from %s: epoch %d, step %d (batch %d of the epoch)", path, self.epoch,
                     self.step, self.batch_in_epoch)

    # ------------------------------------------------------------------ loop

    def fit(self) -> Dict[str, Any]:
        max_epochs = self.cfg.trainer.max_epochs
        if self.env.is_main:
            self._write_run_info()
            log.info("run directory: %s", self.run_dir)
        status = "finished"
        while self.epoch < max_epochs:
            status = self.train_epoch()
            if status != "epoch_done":
                break
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self._precise_bn()
            metrics = self._maybe_validate()
            self._save_epoch_checkpoints(metrics)
            status = "max_steps" if self._max_steps_reached() else "finished"
            if status == "max_steps":
                break
        return self._finish(status)

    def train_epoch(self) -> str:
        cfg, env = self.cfg, self.env
        self.loader.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * self.loader.batch_size)
        self.ddp_model.train()
        timer, loss_sum, loss_count = StepTimer(), 0.0, 0
        bar = tqdm(total=len(self.loader) + self.batch_in_epoch, initial=self.batch_in_epoch,
                   desc=f"epoch {self.epoch + 1}/{cfg.trainer.max_epochs}", disable=not env.is_main,
                   dynamic_ncols=True, mininterval=1.0, leave=False)
        batches = iter(self.loader)
        while True:
            if self._should_stop():
                bar.close()
                return "stopped"
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception:
                if self.stop.requested:  # workers were interrupted by the same signal
                    bar.close()
                    return "stopped"
                raise
            timer.waited()
            loss = self.train_step(batch)
            timer.stepped(batch[0].shape[0] * env.world_size)
            loss_sum, loss_count = loss_sum + loss, loss_count + 1
            bar.update(1)
            if self.batch_in_epoch % cfg.trainer.accum_steps == 0 and self.step % cfg.trainer.log_every == 0:
                self._log_train(loss_sum / loss_count, timer, bar)
                loss_sum, loss_count = 0.0, 0
            if self._max_steps_reached():
                bar.close()
                return "max_steps"
        bar.close()
        self._end_of_epoch_report(timer)
        return "epoch_done"

    def train_step(self, batch) -> float:
        """One micro-batch: forward, backward; an optimiser step every `accum_steps` micro-batches."""
        cfg = self.cfg.trainer
        clips, labels = device_batch(batch, self.data_cfg, self.device, channels_last=cfg.channels_last)
        self.batch_in_epoch += 1
        boundary = self.batch_in_epoch % cfg.accum_steps == 0
        sync = nullcontext() if boundary or not self.env.distributed else self.ddp_model.no_sync()
        with sync:
            with autocast(self.precision, self.device):
                logits = self.ddp_model(clips)                                  # (N, num_classes)
                loss = F.cross_entropy(logits.float(), labels, label_smoothing=cfg.label_smoothing)
            self._check_finite(loss)
            self.scaler.scale(loss / cfg.accum_steps).backward()
        maybe_fault("train_step")
        if boundary:
            self._optimizer_step()
        return loss.item()

    def _optimizer_step(self) -> None:
        if self.cfg.trainer.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.trainer.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    def _check_finite(self, loss: torch.Tensor) -> None:
        bad = dist_utils.any_rank(not torch.isfinite(loss).item(), self.device)
        if bad:
            last = self.run_dir / "last.pt"
            kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
            raise Action3dError(f"non-finite loss ({loss.item()}) at step {self.step + 1} (epoch {self.epoch + 1}, "
                                f"batch {self.batch_in_epoch}); stopped without saving it, {kept}; "
                                "lower optim.lr or set trainer.grad_clip")

    def _should_stop(self) -> bool:
        at_boundary = self.batch_in_epoch % self.cfg.trainer.accum_steps == 0
        return at_boundary and dist_utils.any_rank(self.stop.requested, self.device)

    def _max_steps_reached(self) -> bool:
        return 0 < self.cfg.trainer.max_steps <= self.step

    # ------------------------------------------------------------------ logging, validation, checkpoints

    def _log_train(self, loss: float, timer: StepTimer, bar: tqdm) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        values = {"train/loss": loss, "train/lr": lr, "train/clips_per_s": timer.clips_per_s,
                  "train/data_wait": timer.wait_share}
        self.log.scalars(self.step, values)
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.3g}", clips_s=f"{timer.clips_per_s:.1f}",
                        wait=f"{timer.wait_share:.0%}", refresh=False)

    def _end_of_epoch_report(self, timer: StepTimer) -> None:
        failures = [f for part in dist_utils.all_gather_objects(self.train_set.drain_failures()) for f in part]
        if not self.env.is_main:
            return
        self.failed_files.update(p for p, _ in failures)
        if failures:
            log.warning("epoch %d: %d unreadable samples replaced (%d distinct files so far)",
                        self.epoch + 1, len(failures), len(self.failed_files))
        self.log.scalars(self.step, {"train/failed_samples": float(len(failures))})
        advice = data_wait_advice(timer.wait_share, self.cfg.trainer.data_wait_warn, self.data_cfg.num_workers)
        if advice:
            log.warning(advice)

    def _precise_bn(self) -> None:
        """Running BN statistics of the current weights, before validation and the checkpoint."""
        count = self.cfg.trainer.precise_bn_batches
        if count <= 0:
            return
        self.loader.sampler.set_epoch(self.epoch)  # the next epoch's first batches

        def batches():
            for i, batch in enumerate(self.loader):
                if i >= count:
                    return
                yield device_batch(batch, self.data_cfg, self.device, channels_last=self.cfg.trainer.channels_last)[0]

        recompute_bn_stats(self.model, batches())

    def _maybe_validate(self) -> Optional[Dict[str, float]]:
        due = self.epoch % self.cfg.trainer.val_every == 0 or self.epoch == self.cfg.trainer.max_epochs
        if self.val_set is None or not due:
            return None
        maybe_fault("validate")
        metrics = validate(self.model, self.val_set, self.data_cfg, self.env, precision=self.precision,
                           channels_last=self.cfg.trainer.channels_last)
        self.val_set.drain_failures()  # names each unreadable validation video once (logger action3d.data)
        if self.env.is_main:
            self.log.scalars(self.step, {"val/top1": metrics["top1"], "val/top5": metrics["top5"]})
            log.info("epoch %d: val top-1 %.2f%%, top-5 %.2f%% (%d videos%s)", self.epoch, 100 * metrics["top1"],
                     100 * metrics["top5"], metrics["videos"],
                     f", {metrics['failed']} unreadable" if metrics["failed"] else "")
        return metrics

    def _save_epoch_checkpoints(self, metrics: Optional[Dict[str, float]]) -> None:
        improved = metrics is not None and metrics["top1"] > self.best_top1
        if improved:
            self.best_top1, self.best_epoch = metrics["top1"], self.epoch
        if not self.env.is_main:
            return
        # last.pt is written last: trainer.resume=auto trusts it, so best.pt and epoch_N.pt of this
        # epoch must be on disk before it (a kill in between then redoes the epoch, losing nothing).
        state = self.state()
        if improved or (self.val_set is None):
            save_checkpoint(state, self.run_dir / "best.pt")
        every = self.cfg.trainer.ckpt_every
        if every and self.epoch % every == 0:
            save_checkpoint(state, self.run_dir / f"epoch_{self.epoch}.pt")
        save_checkpoint(state, self.run_dir / "last.pt")
        self.log.flush()

    def state(self) -> Dict[str, Any]:
        return {
            "format": "action3d-checkpoint-v1",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "sampler_epoch": self.loader.sampler.epoch,
            "rng": rng_state(),
            "config": OmegaConf.to_container(self._resolved_config(), resolve=True),
            "classes": list(self.classes),
            "best_top1": self.best_top1,
            "best_epoch": self.best_epoch,
        }

    def _resolved_config(self) -> DictConfig:
        cfg = self.cfg.copy()
        cfg.model = self.model_cfg
        cfg.data = self.data_cfg
        return cfg

    def _finish(self, status: str) -> Dict[str, Any]:
        if status in ("stopped", "max_steps") and self.env.is_main:
            save_checkpoint(self.state(), self.run_dir / "last.pt")
        if status == "stopped" and self.env.is_main:
            log.warning("%s received: saved %s at epoch %d, batch %d; continue with trainer.resume=auto "
                        "hydra.run.dir=%s", self.stop.signal_name, self.run_dir / "last.pt", self.epoch + 1,
                        self.batch_in_epoch, self.run_dir)
        best = self.run_dir / "best.pt"
        summary = {"status": status, "best_top1": self.best_top1 if self.best_top1 >= 0 else None,
                   "best_epoch": self.best_epoch, "epochs": self.epoch, "steps": self.step,
                   "checkpoint": str(best if best.exists() else self.run_dir / "last.pt"),
                   "run_dir": str(self.run_dir), "overrides": self.overrides,
                   "failed_files": sorted(self.failed_files)}
        if self.env.is_main:
            atomic_write(self.run_dir / "summary.json", json.dumps(summary, indent=2))
            self.log.close()
        return summary

    def _write_run_info(self) -> None:
        atomic_write(self.run_dir / "classes.txt", "\n".join(self.classes) + "\n")
