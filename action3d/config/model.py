"""Typed schema of the `model` section, each field with its rules (`action3d.config.option`).

Field names and meanings follow mmaction2's ResNet3d (docs/models.md describes each option); list
fields hold one entry per stage. `ResNet3d(...)` called from Python checks its arguments with
these same rules (`action3d.config.model_checks`), so a mistake reads the same from the command
line (`model.depth=19`) and from Python (`ResNet3d(19)`).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple

from action3d.config.checks import ConfigError, check_ints, fail, is_int, per_block, per_stage
from action3d.config.option import Context, Rule, check_fields, commands_with, only_when, option

# depth -> (block kind, blocks per stage); mmaction2's ResNet3d.arch_settings.
ARCH_SETTINGS: Dict[int, Tuple[str, Tuple[int, ...]]] = {
    10: ("basic", (1, 1, 1, 1)),       # Hara et al.'s ResNet-10
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),  # Hara et al.'s ResNet-200
}
EXPANSION = {"basic": 1, "bottleneck": 4}
ARCHS = ("resnet3d", "slowfast", "x3d")
CONV_TYPES = ("3d", "2plus1d")
BOTTLENECK_MODES = ("standard", "ir", "ip")
MID_CHANNELS_RULES = ("conv", "block", "out")
NON_LOCAL_MODES = ("embedded_gaussian", "dot_product")
MODEL_COMMANDS = commands_with("train", "info")   # eval, predict, ... rebuild the checkpoint's model


# --------------------------------------------------------------------------- rules that read other keys

def _stage_count(section: Any) -> int:
    n = section.num_stages
    return n if is_int(n) and 1 <= n <= 4 else 4   # a bad num_stages is reported by its own rule


def blocks_per_stage(section: Any) -> List[int]:
    """Blocks per stage: model.stage_blocks (checked before the keys that use it), else the
    depth's default; cut to num_stages."""
    default = ARCH_SETTINGS.get(section.depth, ARCH_SETTINGS[18])[1]
    blocks = default if section.stage_blocks is None else section.stage_blocks
    return per_stage("stage_blocks", blocks, _stage_count(section))


def _per_stage_ints(value: Any, ctx: Context) -> None:
    check_ints(ctx.key, per_stage(ctx.key, value, _stage_count(ctx.section)))


def check_slowfast(*, base_channels: int = 64, **arguments: Any) -> None:
    """ResNet3dSlowFast's rates checked by ModelConfig's rules (from Python)."""
    section = SimpleNamespace(**{**vars(ModelConfig()), "arch": "slowfast", "base_channels": base_channels,
                                 **arguments})
    check_fields(ModelConfig, section, keys=tuple(arguments))


def _per_block_flags(value: Any, ctx: Context) -> None:
    per_block(ctx.key, value, blocks_per_stage(ctx.section))


def _stage_indices(value: Any, ctx: Context) -> None:
    n = _stage_count(ctx.section)
    indices = [value] if is_int(value) else list(value)
    if not indices or any(not is_int(i) or not 0 <= i < n for i in indices):
        fail(ctx.key, value, f"entries must be stage indices 0..{n - 1}")
    if ctx.section.arch == "slowfast" and sorted(set(indices)) != [n - 1]:
        fail(ctx.key, value, "SlowFast classifies the last stage of both pathways; leave out_indices at the last stage")


def _frozen_stages(value: Any, ctx: Context) -> None:
    n = _stage_count(ctx.section)
    if not (is_int(value) and -1 <= value <= n):
        fail(ctx.key, value, f"must be -1 (none) .. {n}")


def _divides(other: str, why: str = ""):
    """SlowFast: the value divides another key's (which pathway rates and widths need)."""
    def check(value: Any, ctx: Context) -> None:
        prefix = ctx.key.rsplit(".", 1)[0] + "." if "." in ctx.key else ""
        total = getattr(ctx.section, other)
        if ctx.section.arch == "slowfast" and is_int(total) and total % value != 0:
            fail(ctx.key, value, f"must divide {prefix}{other}={total}{why}")
    return check


def _odd(value: Any, ctx: Context) -> None:
    if ctx.section.arch == "slowfast" and value % 2 == 0:
        fail(ctx.key, value, "must be an odd number >= 1")


def _bottleneck_only(ctx: Context) -> Optional[str]:
    if ctx.section.arch == "x3d":
        return "X3D blocks have their own layout (a channel-wise 3x3x3 conv, strided) and model.arch=x3d"
    if ARCH_SETTINGS.get(ctx.section.depth, ("",))[0] == "bottleneck":
        return None
    return f"it shapes bottleneck blocks and model.depth={ctx.section.depth} uses basic blocks"


def _not_x3d(ctx: Context) -> Optional[str]:
    return "X3D's stem and blocks have their own convolutions and model.arch=x3d" if ctx.section.arch == "x3d" else None


def _with_pool1(ctx: Context) -> Optional[str]:
    return None if ctx.section.with_pool1 else "model.with_pool1=false builds no stem max-pool"


def _with_non_local(ctx: Context) -> Optional[str]:
    flags = ctx.section.non_local
    entries = [flags] if is_int(flags) else [e for stage in flags for e in (stage if not is_int(stage) else [stage])]
    return None if 1 in entries else "model.non_local places no non-local block"


def _with_pretrained(ctx: Context) -> Optional[str]:
    return None if ctx.section.pretrained else "no model.pretrained is given"


def _shortcut_b(ctx: Context) -> Optional[str]:
    return None if ctx.section.shortcut_type == "B" else "shortcut_type=A has no convolution to average-pool for"


def _shortcut_conv(ctx: Context) -> Optional[str]:
    return None if ctx.section.shortcut_type == "B" else "shortcut_type=A has no convolution to normalise"


def _rgb_in_training(ctx: Context) -> Optional[str]:
    if ctx.command != "train" or ctx.section.in_channels == 3:
        return None
    return ("videos decode to 3 RGB channels; other input channels apply to `action3d info` and to Python use "
            "of the backbones")


def _the_datasets_classes(value: Any, ctx: Context) -> None:
    """A dataset whose config fixes its class count (the synthetic set) must agree with it;
    other datasets tell later, when their lists are read."""
    from action3d.data.formats import format_of

    declared = format_of(ctx.root.data).declared_classes() if ctx.command == "train" else None
    if declared is not None and value != declared[0]:
        count, key = declared
        raise ConfigError(f"{ctx.key}={value} but the {ctx.root.data.format} dataset has {count} classes ({key}); "
                          f"leave {ctx.key} unset to take the dataset's")


def _existing_file(value: Any, ctx: Context) -> None:
    from action3d.config.paths import existing_file

    existing_file(ctx.key, value)


def _slowfast_only(ctx: Context) -> Optional[str]:
    if ctx.section.arch == "slowfast":
        return None
    return f"it is a SlowFast setting and model.arch={ctx.section.arch}"


_SLOWFAST = dict(commands=MODEL_COMMANDS, applies=_slowfast_only)
_X3D = dict(commands=MODEL_COMMANDS, applies=only_when("arch", "x3d", reason="it is an X3D setting"))
_FACTORISED = dict(commands=MODEL_COMMANDS,
                   applies=only_when("conv_type", "2plus1d", reason="it shapes (2+1)D convolutions"))
_POSITIVE_INT = Rule(low=1, integer=True)
_FLAGS_HELP = ("per stage, an int for all its blocks or a list with one 0/1 per block (a single int: every block of "
               "every stage)")


@dataclass
class ModelConfig:
    name: str = option("tiny", commands=MODEL_COMMANDS,
                       help="a label: printed by `action3d info` and stored with the run's config in its checkpoints; "
                            "each preset (`model=NAME`) sets its own name")
    arch: str = option("resnet3d", choices=ARCHS, commands=MODEL_COMMANDS,
                       help="`resnet3d`: one pathway; `slowfast`: a slow and a fast pathway joined by lateral "
                            "connections (resample_rate, speed_ratio, channel_ratio, fusion_kernel, lateral_norm, "
                            "slow_sampling and the fast_* keys apply only there); `x3d`: X3D (Feichtenhofer, 2020), "
                            "one pathway of X3D blocks (1x1x1, channel-wise 3x3x3 with squeeze-excitation and swish, "
                            "1x1x1) after a (2+1)D stem whose temporal conv is channel-wise, and a head with a "
                            "pre-logit projection (bottleneck_ratio, se_ratio and head_channels apply only there)")
    depth: int = option(18, choices=tuple(sorted(ARCH_SETTINGS)), commands=MODEL_COMMANDS,
                        help="ResNet depth: 10, 18 and 34 build basic blocks (two 3x3 convs), 50, 101, 152 and 200 "
                             "bottlenecks (1x1x1 reduce, 3x3, 1x1x1 expand x4); it sets the blocks per stage (10: "
                             "[1,1,1,1], 18: [2,2,2,2], 34 and 50: [3,4,6,3], 101: [3,4,23,3], 152: [3,8,36,3], 200: "
                             "[3,24,36,3]) unless model.stage_blocks is given (arch=x3d: X3D blocks at any depth)")
    num_classes: Optional[int] = option(None, low=1, integer=True, preflight=_the_datasets_classes,
                                        commands=MODEL_COMMANDS,
                                        help="classifier outputs (logits per clip); unset: the dataset's number of "
                                             "classes (`info`: default_num_classes); set, it must equal the dataset's")
    pretrained: Optional[str] = option(None, preflight=_existing_file, commands=MODEL_COMMANDS,
                                       help="weights to load into the built model: an action3d checkpoint, an "
                                            "mmaction2 recognizer checkpoint, a torchvision r3d_18/mc3_18/r2plus1d_18 "
                                            "state dict, a PyTorchVideo hub file, a PySlowFast .pyth or Caffe2 .pkl, "
                                            "one of Hara's 3D ResNets, or 2D ImageNet ResNet weights to inflate; the "
                                            "kind is recognised from the contents and one line reports what was "
                                            "loaded (and the preset a zoo file was made for, when it is another); a "
                                            "zoo file's tensors must all fit; a classifier of another class count is "
                                            "re-initialised")
    pretrained2d: bool = option(True, applies=_with_pretrained, commands=MODEL_COMMANDS,
                                help="allow model.pretrained to be 2D ImageNet weights, inflated into 3D (each 2D "
                                     "kernel repeated along time and divided by the temporal kernel size; BN copied); "
                                     "false: such a file is refused")
    stage_blocks: Optional[List[int]] = option(None, check=_per_stage_ints, commands=MODEL_COMMANDS,
                                               help="blocks per stage, one entry per stage, replacing the depth's "
                                                    "(e.g. [1,1,1,1]); unset: the depth's")
    in_channels: int = option(3, low=1, integer=True, applies=_rgb_in_training, commands=MODEL_COMMANDS,
                              help="input channels of the stem; videos decode to 3 (RGB), so train takes 3 only: other "
                                   "values serve `action3d info` and Python use of the backbones")
    base_channels: int = option(64, low=1, integer=True, commands=MODEL_COMMANDS,
                                help="output channels of the stem (its width); stage i has base_channels * 2**i planes "
                                     "(x4 at a bottleneck's output)")
    out_indices: Optional[List[int]] = option(None, check=_stage_indices, commands=MODEL_COMMANDS,
                                              help="stages (0-based) whose features the backbone returns, a tuple when "
                                                   "several; the head classifies the last one and later stages are not "
                                                   "built; unset: the last stage (SlowFast: always the last)")
    num_stages: int = option(4, low=1, high=4, integer=True, commands=MODEL_COMMANDS,
                             help="residual stages (1..4); per-stage lists have this many entries (a 4-entry list is "
                                  "cut to the first num_stages)")
    spatial_strides: List[int] = option(factory=lambda: [1, 2, 2, 2], check=_per_stage_ints,
                                        commands=MODEL_COMMANDS,
                                        help="per stage: the spatial stride of its first block; a stride (temporal "
                                             "too) or a change of width gives that block a shortcut convolution "
                                             "(model.shortcut_type)")
    temporal_strides: List[int] = option(factory=lambda: [1, 1, 1, 1], check=_per_stage_ints,
                                         commands=MODEL_COMMANDS,
                                         help="per stage: the temporal stride of its first block")
    dilations: List[int] = option(factory=lambda: [1, 1, 1, 1], check=_per_stage_ints, commands=MODEL_COMMANDS,
                                  help="per stage: the spatial dilation of its blocks' first 3x3 convolution")
    conv1_kernel: List[int] = option(factory=lambda: [3, 7, 7], length=3, items=_POSITIVE_INT,
                                     entries="(temporal, height, width)", commands=MODEL_COMMANDS,
                                     help="the stem convolution's kernel (temporal, height, width), padded by half its "
                                          "size on each side")
    conv1_stride: List[int] = option(factory=lambda: [1, 2], length=2, items=_POSITIVE_INT,
                                     entries="(temporal, spatial)", commands=MODEL_COMMANDS,
                                     help="the stem convolution's stride (temporal, spatial)")
    pool1_stride: List[int] = option(factory=lambda: [1, 2], length=2, items=_POSITIVE_INT,
                                     entries="(temporal, spatial)", commands=MODEL_COMMANDS,
                                     help="the stride (temporal, spatial) of the stem's max-pool "
                                          "(model.with_pool1, model.pool1_kernel)")
    pool1_kernel: List[int] = option(factory=lambda: [1, 3, 3], length=3, items=_POSITIVE_INT,
                                     entries="(temporal, height, width)", applies=_with_pool1, commands=MODEL_COMMANDS,
                                     help="the stem max-pool's kernel, padded by half its size on each side: [1,3,3] "
                                          "(mmaction2, PySlowFast), [3,3,3] with pool1_stride [2,2] (Hara et al.)")
    with_pool1: bool = option(True, commands=MODEL_COMMANDS,
                              help="the stem's max-pool after its convolution (false: none, as in R3D-18)")
    with_pool2: bool = option(True, commands=MODEL_COMMANDS,
                              help="a (2,1,1) temporal max-pool after stage 1, as in I3D: it halves the frames")
    style: str = option("pytorch", choices=("pytorch", "caffe"), applies=_bottleneck_only, commands=MODEL_COMMANDS,
                        help="where a bottleneck strides: `pytorch` on its 3x3 conv, `caffe` on its first 1x1x1 conv "
                             "(basic blocks always stride their first conv)")
    advanced: bool = option(False, applies=_shortcut_b, commands=MODEL_COMMANDS,
                            help="ResNet-D shortcut (shortcut_type B): average-pool, then an unstrided 1x1x1 conv, so "
                                 "no input position is skipped")
    shortcut_type: str = option("B", choices=("A", "B"), commands=MODEL_COMMANDS,
                                help="the shortcut of a block that changes size or width: `B` a strided 1x1x1 conv + "
                                     "BN; `A` parameter-free, a strided identity with the new channels zero-filled "
                                     "(Hara et al.)")
    shortcut_norm: str = option("always", choices=("always", "widening"), applies=_shortcut_conv,
                                commands=MODEL_COMMANDS,
                                help="the norm after a shortcut convolution: `always`; `widening` only where it "
                                     "widens, as in PyTorchVideo's X3D, whose first stage strides without widening and "
                                     "has no norm in that shortcut (PySlowFast's X3D has one: `always`)")
    frozen_stages: int = option(-1, check=_frozen_stages, commands=MODEL_COMMANDS,
                                help="the stem and stages 1..k get no gradient and keep their BN in eval mode, k from "
                                     "-1 (none) and 0 (the stem only) to num_stages")
    inflate: List[Any] = option(factory=lambda: [1, 1, 1, 1], check=_per_block_flags, commands=MODEL_COMMANDS,
                                help=f"which blocks get temporal kernels, {_FLAGS_HELP}: an inflated basic block has "
                                     "3x3x3 convs (else 1x3x3), an inflated bottleneck follows model.inflate_style "
                                     "(else 1x1x1 + 1x3x3 + 1x1x1)")
    inflate_style: str = option("3x1x1", choices=("3x1x1", "3x3x3"), applies=_bottleneck_only,
                                commands=MODEL_COMMANDS,
                                help="which conv of an inflated bottleneck gets the temporal kernel: `3x1x1` its first "
                                     "(3x1x1 + 1x3x3 + 1x1x1), `3x3x3` its middle one (1x1x1 + 3x3x3 + 1x1x1)")
    non_local: List[Any] = option(factory=lambda: [0, 0, 0, 0], check=_per_block_flags, commands=MODEL_COMMANDS,
                                  help=f"non-local blocks after the flagged blocks, {_FLAGS_HELP}; each starts as the "
                                       "identity (its output BN is zero)")
    non_local_mode: str = option("embedded_gaussian", choices=NON_LOCAL_MODES, applies=_with_non_local,
                                 commands=MODEL_COMMANDS,
                                 help="the non-local affinity: `embedded_gaussian` a softmax, `dot_product` divided by "
                                      "the number of positions")
    non_local_sub_sample: bool = option(False, applies=_with_non_local, commands=MODEL_COMMANDS,
                                        help="max-pool the keys and values of non-local blocks 2x2 in space (4x fewer "
                                             "positions to attend to)")
    non_local_use_scale: bool = option(False, applies=_with_non_local, commands=MODEL_COMMANDS,
                                       help="embedded_gaussian: divide the affinities by sqrt(C') before the softmax")
    norm_eval: bool = option(False, commands=MODEL_COMMANDS,
                             help="keep every BN in eval mode (frozen running statistics) while training; their "
                                  "weights still learn")
    with_cp: bool = option(False, commands=MODEL_COMMANDS,
                           help="gradient checkpointing per block (torch.utils.checkpoint): less memory for ~30% more "
                                "compute, the same gradients")
    zero_init_residual: bool = option(True, commands=MODEL_COMMANDS,
                                      help="each block's last BN starts at zero, so every block starts as the identity")
    dropout: float = option(0.5, low=0.0, high=1.0, high_open=True, commands=MODEL_COMMANDS,
                            help="dropout before the classifier (the head: global average pool, dropout, linear)")
    # SlowFast only: the top-level fields describe the slow pathway.
    resample_rate: int = option(8, low=1, integer=True, **_SLOWFAST,
                                help="tau: the slow pathway takes every tau-th frame of the input clip")
    speed_ratio: int = option(8, low=1, integer=True, **_SLOWFAST,
                              check=_divides("resample_rate", " (the fast pathway takes every "
                                                              "resample_rate/speed_ratio-th frame)"),
                              help="alpha: the fast pathway takes alpha times as many frames as the slow one (every "
                                   "resample_rate/alpha-th frame; alpha must divide resample_rate); also the temporal "
                                   "stride of the lateral connections")
    channel_ratio: int = option(8, low=1, integer=True, check=_divides("base_channels"), **_SLOWFAST,
                                help="1/beta: the fast pathway has base_channels / channel_ratio channels (it must "
                                     "divide model.base_channels)")
    fusion_kernel: int = option(5, low=1, integer=True, check=_odd, **_SLOWFAST,
                                help="the temporal kernel (odd) of the lateral (k,1,1) convs that join the fast "
                                     "pathway to the slow one after the stem and every stage but the last")
    fast_conv1_kernel: List[int] = option(factory=lambda: [5, 7, 7], length=3, items=_POSITIVE_INT,
                                          entries="(temporal, height, width)", **_SLOWFAST,
                                          help="the fast pathway's stem kernel; it shares the slow pathway's other "
                                               "keys but has no non-local blocks")
    fast_inflate: List[Any] = option(factory=lambda: [1, 1, 1, 1], check=_per_block_flags, **_SLOWFAST,
                                     help=f"the fast pathway's temporal kernels (as model.inflate), {_FLAGS_HELP}")
    lateral_norm: bool = option(False, **_SLOWFAST,
                                help="BN and ReLU after each lateral conv, as PySlowFast and PyTorchVideo build them "
                                     "(mmaction2's laterals are a bare conv)")
    slow_sampling: str = option("stride", choices=("stride", "linspace"), **_SLOWFAST,
                                help="which frames of the clip the slow pathway takes: `stride` every resample_rate-th "
                                     "(mmaction2); `linspace` T // resample_rate frames at linspace(0, T-1), rounded "
                                     "down, as PySlowFast's and PyTorchVideo's PackPathway (the fast pathway always "
                                     "strides)")
    # Model families on the same ResNet3d: (2+1)D convolutions, channel-separated bottlenecks, norm epsilon.
    conv_type: str = option("3d", choices=CONV_TYPES, applies=_not_x3d, commands=MODEL_COMMANDS,
                            help="the convolutions with a temporal and a spatial kernel (in the stem and the blocks): "
                                 "`3d` full 3D; `2plus1d` factorised as R(2+1)D (Tran et al., 2018): a 1xkxk spatial "
                                 "conv to mid channels (model.mid_channels_rule), norm, ReLU, then a kx1x1 temporal "
                                 "conv (model.temporal_first swaps them); strides split between the two")
    temporal_first: bool = option(False, **_FACTORISED,
                                  help="(2+1)D convs run the temporal conv first, as PyTorchVideo's R(2+1)D (false: "
                                       "spatial first, as torchvision and mmaction2)")
    mid_channels_rule: str = option("conv", choices=MID_CHANNELS_RULES, **_FACTORISED,
                                    help="mid channels of a (2+1)D conv, M = floor(t*k*k*N_in*N_out / (k*k*N_in + "
                                         "t*N_out)) (Tran et al.): `conv` from each conv's own widths (mmaction2); "
                                         "`block` both convs of a basic block from its first conv's widths "
                                         "(torchvision's r2plus1d_18); `out` M = the conv's output width "
                                         "(PyTorchVideo's r2plus1d_r50)")
    conv1_mid_channels: Optional[int] = option(None, low=1, integer=True, **_FACTORISED,
                                               help="mid channels of a (2+1)D stem (e.g. 45 in torchvision's "
                                                    "r2plus1d_18); unset: model.mid_channels_rule")
    bottleneck_mode: str = option("standard", choices=BOTTLENECK_MODES, applies=_bottleneck_only,
                                  commands=MODEL_COMMANDS,
                                  help="the middle conv of a bottleneck: `standard`; `ir` channel-wise (one group "
                                       "per channel, CSN's interaction-reduced block, Tran et al., 2019); `ip` a 1x1x1 "
                                       "conv + BN, then the channel-wise conv (interaction-preserved); CSN uses "
                                       "inflate_style=3x3x3")
    norm_eps: float = option(1e-5, low=0.0, low_open=True, commands=MODEL_COMMANDS,
                             help="epsilon of every batch norm (1e-5: PyTorch's default; mmaction2's CSN and R(2+1)D "
                                  "use 1e-3)")
    # X3D only (arch=x3d).
    bottleneck_ratio: float = option(2.25, low=0.0, low_open=True, **_X3D,
                                     help="the inner width of an X3D block: int(ratio * its stage's width) (X3D's "
                                          "bottleneck factor); the head's first 1x1x1 conv widens to the same ratio")
    se_ratio: float = option(0.0625, low=0.0, high=1.0, high_open=True, **_X3D,
                             help="squeeze-excitation after the channel-wise conv of every other X3D block (the "
                                  "first, third, ...): its reduced width is ratio * inner width, rounded to a multiple "
                                  "of 8 (at least 8); 0: none")
    head_channels: int = option(2048, low=1, integer=True, **_X3D,
                                help="the X3D head's pre-logit projection: a 1x1x1 conv (no bias, ReLU) after the "
                                     "pool, to this many features (the classifier's and `action3d embed`'s input)")
