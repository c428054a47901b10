"""Typed schemas of the `optim`, `sched`, `trainer` and `eval` sections, each field with its rules."""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import List, Optional

from action3d.config.checks import fail
from action3d.config.option import Context, Rule, all_of, only_when, option
from action3d.config.runtime import DEVICES, PRECISIONS

_SGD = only_when("name", "sgd", reason="it is an SGD setting")
_ADAMW = only_when("name", "adamw", reason="it is an AdamW setting")
_MULTISTEP = only_when("name", "multistep", reason="it is a multistep setting")


@dataclass
class OptimConfig:
    name: str = option("sgd", choices=("sgd", "adamw"), help="the optimiser: sgd (with momentum) or adamw")
    lr: float = option(0.04, low=0.0, low_open=True,
                       help="learning rate for a global batch of 8 clips (data.batch_size x processes x "
                            "trainer.accum_steps); scale it linearly with the global batch. With "
                            "optim.backbone_lr_mult: the head's rate")
    momentum: float = option(0.9, low=0.0, high=1.0, applies=_SGD, help="SGD momentum")
    nesterov: bool = option(False, applies=_SGD, help="SGD: Nesterov momentum")
    weight_decay: float = option(1e-4, low=0.0, help="weight decay: L2 for SGD, decoupled for AdamW")
    betas: List[float] = option(factory=lambda: [0.9, 0.999], length=2, items=Rule(low=0.0, high=1.0, high_open=True),
                                applies=_ADAMW, help="AdamW's (beta1, beta2): the decay rates of its gradient averages")
    no_decay_norm_bias: bool = option(True, help="no weight decay on norm layers' weights and on biases")
    backbone_lr_mult: float = option(1.0, low=0.0,
                                     help="the backbone's learning rate relative to the head's: the head (cls_head.*) "
                                          "learns at optim.lr, the backbone (backbone.*) at optim.lr x this, a ratio "
                                          "the schedule keeps; 0 trains the head only (model.frozen_stages still "
                                          "freezes whole stages)")


def _milestones_reached(ctx: Context) -> Optional[str]:
    """A milestone after the last epoch would never fire."""
    late = [m for m in ctx.section.milestones if m >= ctx.root.trainer.max_epochs]
    if late:
        end = ctx.root.trainer.max_epochs
        return f"milestone {late[0]} is not before the end of training (trainer.max_epochs={end})"
    return None


@dataclass
class SchedConfig:
    name: str = option("cosine", choices=("cosine", "multistep", "constant"),
                       help="the learning-rate schedule after the warm-up: cosine (down to sched.min_lr at the end of "
                            "training), multistep (x sched.gamma at each milestone) or constant; the rate is set at "
                            "every optimiser step, so a mid-epoch resume continues on the same curve")
    warmup_epochs: float = option(1.0, low=0.0,
                                  help="linear warm-up of every schedule, in epochs (fractions allowed; 0: none): from "
                                       "sched.warmup_start_factor x the rate up to it")
    warmup_start_factor: float = option(0.1, low=0.0, low_open=True, high=1.0,
                                        help="the share of the rate the warm-up starts at")
    milestones: List[int] = option(factory=lambda: [30, 40], items=Rule(low=1, integer=True), increasing=True,
                                   applies=all_of(_MULTISTEP, _milestones_reached),
                                   help="multistep: the epochs (before trainer.max_epochs) at which the rate is "
                                        "multiplied by sched.gamma")
    gamma: float = option(0.1, low=0.0, high=1.0, applies=_MULTISTEP, help="multistep: the factor at each milestone")
    min_lr: float = option(0.0, low=0.0, applies=only_when("name", "cosine", reason="it is a cosine setting"),
                           help="cosine: the rate it ends at, at the end of training (the head's, with "
                                "optim.backbone_lr_mult)")


def _resume_file(value: str, ctx: Context) -> None:
    from action3d.config.paths import existing_file

    if value != "auto":
        existing_file(ctx.key, value, hint="or trainer.resume=auto")


def _device_available(value: str, ctx: Context) -> None:
    """trainer.device=cuda needs CUDA: torch is imported only when it is asked for."""
    if value != "cuda":
        return
    import torch

    from action3d.config.runtime import check_device

    check_device(value, cuda_available=torch.cuda.is_available(), key=ctx.key)


def _sync_bn_on_cuda(value: bool, ctx: Context) -> None:
    if not value:
        return
    import torch

    from action3d.config.runtime import check_sync_bn, resolve_device_type

    device = resolve_device_type(ctx.section.device, cuda_available=torch.cuda.is_available())
    check_sync_bn(value, device_type=device, key=ctx.key)


def _under_torchrun(ctx: Context) -> Optional[str]:
    if not ctx.section.sync_bn or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    return "it synchronises BatchNorm across DDP processes and this is one process (start it with torchrun)"


def _not_with_balanced_sampler(value: str, ctx: Context) -> None:
    data = getattr(ctx.root, "data", None)
    if value == "auto" and data is not None and data.sampler == "balanced":
        fail(ctx.key, value, "data.sampler=balanced already draws every class equally often; weighting the loss "
                             "too would make a rare class count the imbalance ratio times more; use one")


MONITORS = ("top1", "map", "loss")
LOGGERS = ("tensorboard", "mlflow", "wandb")
TRACKER_PACKAGES = {"mlflow": "mlflow", "wandb": "wandb"}  # the package each non-default logger imports


def monitored(trainer: TrainerConfig, multi_label: bool) -> str:
    """trainer.monitor as it takes effect: unset means top1, or map under data.multi_label."""
    return trainer.monitor or ("map" if multi_label else "top1")


def _monitor_fits_the_labels(value: str, ctx: Context) -> None:
    multi_label = ctx.root.data.multi_label
    if value == "map" and not multi_label:
        fail(ctx.key, value, "mAP is the multi-label metric and data.multi_label=false: use top1 or loss")
    if value == "top1" and multi_label:
        fail(ctx.key, value, "top-1 needs one label per video and data.multi_label=true: use map or loss")


def _early_stopping_on(ctx: Context) -> Optional[str]:
    return None if ctx.section.early_stop_patience > 0 else "early stopping is off (trainer.early_stop_patience=0)"


def _each_once(value: List[str], ctx: Context) -> None:
    repeated = sorted({name for name in value if list(value).count(name) > 1})
    if repeated:
        fail(ctx.key, value, f"{repeated[0]} is listed twice")


def _trackers_installed(value: List[str], ctx: Context) -> None:
    """Whether each tracker's package is installed here (a checkpoint trained with one runs anywhere)."""
    for name in value:
        package = TRACKER_PACKAGES.get(name)
        if package and importlib.util.find_spec(package) is None:
            fail(ctx.key, value, f"{name} needs the {package} package: pip install 'action3d[trackers]' "
                                 "(make install installs it)")


@dataclass
class TrainerConfig:
    max_epochs: int = option(12, low=1, integer=True, help="epochs to train")
    precision: str = option("auto", choices=PRECISIONS,
                            help="auto: bf16 autocast where the hardware runs bf16 natively (CUDA devices with bf16; "
                                 "CPUs whose flags include avx512_bf16 or amx_bf16), else fp32, the run log naming the "
                                 "choice and why; 32: fp32; bf16: bf16 autocast; 16: fp16 autocast with a gradient "
                                 "scaler. On a CPU without native bf16 (fp16) those run, slowly, with a warning")
    seed: int = option(0, low=0, integer=True,
                       help="seeds the initial weights, the sampler's order, every sample's augmentation (from the "
                            "seed, the epoch and the sample's index) and dropout (seed + rank): on a CPU the same seed "
                            "gives the same run, resumed or not")
    device: str = option("auto", choices=DEVICES, preflight=_device_available,
                         help="auto: CUDA when there is one, else the CPU; cpu; cuda (refused at once without CUDA)")
    val_every: int = option(1, low=1, integer=True,
                            help="validate (after precise BN) every this many epochs, and after the last")
    ckpt_every: int = option(0, low=0, integer=True,
                             help="also keep epoch_N.pt every this many epochs (0: off); last.pt is written after "
                                  "every epoch, best.pt when trainer.monitor improves (without validation: every "
                                  "epoch)")
    ckpt_every_minutes: float = option(30.0, low=0.0,
                                       help="also write last.pt this often in the middle of an epoch, at an "
                                            "optimiser-step boundary all processes agree on (0: only at the end of "
                                            "epochs)")
    resume: Optional[str] = option(None, preflight=_resume_file,
                                   help="auto: continue from this run directory's last.pt (a new run while there is "
                                        "none); or the PATH of a checkpoint: the weights, optimiser, schedule, "
                                        "position in the epoch and random states are restored")
    compile: bool = option(False,
                           help="torch.compile the model (after the DDP wrap); its losses match eager mode's to a "
                                "relative 1e-4 (tested over 3 steps on a CPU)")
    channels_last: bool = option(True,
                                 help="the model and its input batches in the channels_last_3d memory layout (its "
                                      "logits equal the contiguous layout's within 1e-5)")
    sync_bn: bool = option(False, applies=_under_torchrun, preflight=_sync_bn_on_cuda,
                           help="SyncBatchNorm: BN statistics over all DDP processes (CUDA under torchrun only: "
                                "refused on a CPU and in one process)")
    precise_bn_batches: int = option(0, low=0, integer=True,
                                     help="before each validation, recompute the BN running statistics over this many "
                                          "training batches with the current weights (PySlowFast's precise BN; 0: off)")
    grad_clip: float = option(0.0, low=0.0, help="clip the gradients' global norm to this (0: off)")
    accum_steps: int = option(1, low=1, integer=True,
                              help="micro-batches per optimiser step (gradient accumulation); an epoch runs whole "
                                   "groups only: leftover micro-batches are skipped, never carried into the next epoch")
    label_smoothing: float = option(0.0, low=0.0, high=1.0, high_open=True,
                                    help="label smoothing eps: targets y (1 - eps) + eps / K for the softmax, y (1 - "
                                         "eps) + eps / 2 per class under data.multi_label (after mixup/CutMix)")
    class_weights: str = option("none", choices=("none", "auto"), check=_not_with_balanced_sampler,
                                help="auto: the cross-entropy weighs each class by its inverse frequency among the "
                                     "training labels, N / (K x count); under data.multi_label each class's positives "
                                     "weigh its negatives / positives (BCEWithLogitsLoss's pos_weight); not with "
                                     "data.sampler=balanced, which already draws every class equally often")
    log_every: int = option(10, low=1, integer=True,
                            help="optimiser steps between logged points; the loss (and whether it is finite) is read "
                                 "from the device only then, so a non-finite loss stops the run within this many "
                                 "steps, naming the step")
    max_steps: int = option(0, low=0, integer=True,
                            help="stop after this many optimiser steps, validate and save last.pt (0: no limit)")
    data_wait_warn: float = option(0.3, low=0.0, high=1.0,
                                   help="warn at the end of an epoch when the steps waited for data more than this "
                                        "share of the time (the warning suggests more data.num_workers or `action3d "
                                        "data prepare`)")
    monitor: Optional[str] = option(None, choices=MONITORS, check=_monitor_fits_the_labels,
                                    help="what selects best.pt and what early stopping watches: top1 (val top-1), "
                                         "map (val mAP, multi-label) or loss (val loss; lower is better); unset: "
                                         "top1, or map with data.multi_label=true")
    early_stop_patience: int = option(0, low=0, integer=True,
                                      help="stop after this many validations in a row without an improvement of "
                                           "trainer.monitor by more than trainer.early_stop_min_delta (0: off); "
                                           "summary.json and the last log line say why the run ended, and a "
                                           "resumed run keeps the count")
    early_stop_min_delta: float = option(0.0, low=0.0, applies=_early_stopping_on,
                                         help="the least change of trainer.monitor that counts as an improvement "
                                              "for early stopping (best.pt still follows every improvement)")
    loggers: List[str] = option(factory=lambda: ["tensorboard"], items=Rule(choices=LOGGERS), check=_each_once,
                                preflight=_trackers_installed,
                                help="where the run's metrics go besides metrics.jsonl (rank 0 only): tensorboard "
                                     "(tb/), mlflow (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME; the composed "
                                     "config as params, metrics, best.pt and summary.json as artifacts), wandb "
                                     "(the WANDB_* variables, WANDB_MODE=offline works); mlflow and wandb need "
                                     "`pip install 'action3d[trackers]'`. A tracker unreachable at the start stops "
                                     "the run before training; one failing later is warned about once and dropped")


@dataclass
class InferenceConfig:
    """The `trainer` keys that apply when a trained model is only run (eval, predict, ...)."""
    device: str = option("auto", choices=DEVICES, preflight=_device_available,
                         help="auto: CUDA when there is one, else the CPU; cpu; cuda (refused at once without CUDA)")
    precision: str = option("32", choices=PRECISIONS,
                            help="autocast while scoring, as trainer.precision of train: auto (bf16 where the hardware "
                                 "runs it natively, else fp32), 32, bf16 or 16")
    channels_last: bool = option(True, help="the model and its input in the channels_last_3d memory layout")


# eval.protocol: where the test views of a video are placed and how its frames are resized, as each
# zoo's test code does it (action3d.data.sampling.protocol_clip_indices, action3d.data.test_transforms).
PROTOCOLS = ("action3d", "mmaction2_v0", "torchvision", "pyslowfast", "ptv", "hara", "hara_2018")
PROTOCOL_CROPS = {"action3d": (1, 3, 10), "mmaction2_v0": (1, 3, 10), "torchvision": (1,), "pyslowfast": (1, 3),
                  "ptv": (1, 3), "hara": (1,), "hara_2018": (1,)}   # crops per clip its test code defines
_NATIVE_RATE = ("pyslowfast", "ptv")         # they scale the clip span by the video's own rate
_CONSECUTIVE = ("hara", "hara_2018")         # windows of consecutive frames


def _protocol_fits(value: str, ctx: Context) -> None:
    """The views, crops and sampling a protocol's test code defines (checked where eval reads them)."""
    if ctx.command != "eval":
        return
    crops = PROTOCOL_CROPS[value]
    if ctx.section.num_crops not in crops:
        fail(ctx.key, value, f"its test code takes {' or '.join(map(str, crops))} crop(s) per clip, and "
                             f"eval.num_crops={ctx.section.num_crops}")
    data = ctx.root.data
    if value in _NATIVE_RATE and data.target_fps is not None:
        fail(ctx.key, value, f"it scales each clip's span by the video's own frame rate over 30 (PySlowFast's "
                             f"rule); leave data.target_fps unset (it is {data.target_fps})")
    if value in _CONSECUTIVE and data.frame_interval != 1:
        fail(ctx.key, value, f"Hara's test windows are consecutive frames; it needs data.frame_interval=1 "
                             f"(it is {data.frame_interval})")


def _all_windows(ctx: Context) -> Optional[str]:
    protocol = ctx.section.protocol
    return f"eval.protocol={protocol} scores every window of the video" if protocol in _CONSECUTIVE else None


def _npz_file(value: str, ctx: Context) -> None:
    if not str(value).endswith(".npz"):
        fail(ctx.key, value, "expected a file name ending in .npz (numpy's savez format)")


def _eval_only(ctx: Context) -> Optional[str]:
    if ctx.command == "eval":
        return None
    return f"{ctx.command} writes no per-video score file; eval.dump=OUT.npz is `action3d eval`'s"


@dataclass
class EvalConfig:
    num_clips: int = option(1, low=1, integer=True, applies=_all_windows,
                            help="clips per video (or window), spread evenly from its first to its last possible start "
                                 "(one: the middle); eval.protocol places them its own way")
    num_crops: int = option(1, choices=(1, 3, 10),
                            help="crops per clip, from frames resized to data.short_side: 1 (the centre), 3 (along the "
                                 "long side), 10 (the four corners and the centre, and their mirror images)")
    protocol: str = option("action3d", choices=PROTOCOLS, check=_protocol_fits, commands=("eval",),
                           help="where the views of a video are placed and how its frames are resized, as a zoo's "
                                "test code does it (each zoo=SOURCE/NAME sets its own; docs/zoo.md): action3d "
                                "(mmaction2 1.x's SampleFrames test mode, crops from data.short_side), mmaction2_v0 "
                                "(mmaction2 0.x: offsets int(avg/2 + i*avg)), torchvision (every window of "
                                "data.clip_len frames is a clip, eval.num_clips of them spread evenly; videos "
                                "without one are excluded and listed; centre crop), pyslowfast (spans scaled by "
                                "the video's fps / 30, uniform crops), ptv (PyTorchVideo's constant clips per video, "
                                "by timestamps), hara and hara_2018 (every non-overlapping window of data.clip_len "
                                "frames, his 2020 and 2018 code); the zoos resize whole frames, then crop")
    dump: Optional[str] = option(None, check=_npz_file, applies=_eval_only,
                                 help="also write OUT.npz with one row per scored video: `videos` (the paths, "
                                      "relative to data.root when under it; a unicode array, so np.load(..., "
                                      "allow_pickle=False) reads it), `labels` (class indices in the model's order) "
                                      "and `scores` ((N, K) in the model's class order: probabilities for "
                                      "eval.average=prob, logits for score); scripts/fuse_scores.py fuses such files")
    average: str = option("prob", choices=("prob", "score"), commands=("eval", "predict", "explain"),
                          help="how the views of a video (num_clips x num_crops) are combined: prob, the mean of their "
                               "softmax; score, the mean of their logits")
    batch_size: int = option(4, low=1, integer=True, commands=("eval",),
                             help="videos scored per forward pass, each with all its views")
