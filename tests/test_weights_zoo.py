"""Loading the other zoos' files: PyTorchVideo hub files, PySlowFast `.pyth` and Caffe2 `.pkl`, Hara's
checkpoints (both releases), each recognised by its key layout, strict (a tensor that finds no
place is refused in one line), with a note when a file made for one preset goes into another.

The PySlowFast and Caffe2 files are written by this file's own renaming of PyTorchVideo models (the
same networks: PySlowFast's `s2.pathway0_res0.branch2.a` is PyTorchVideo's
`blocks.1.res_blocks.0.branch2.conv_a`; Caffe2's `res2_0_branch2a_w` by PySlowFast's
c2_model_loading.py), and must land exactly where the PyTorchVideo file lands (whose logits
test_zoo_parity.py checks). Hara's files are generated from his models/resnet.py's layout.
"""
from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
import torch

from action3d.config.model_presets import PRESETS as MODEL_PRESETS
from action3d.errors import Action3dError
from action3d.models import PRESETS, build_model, load_zoo_checkpoint
from action3d.models.weights import _prepare

PTV = sorted(name for name in MODEL_PRESETS if name.startswith("ptv/"))


def hub(name: str, *, device: str = "cpu"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)       # pytorchvideo 0.1.5 calls torch.jit.script on import
        from pytorchvideo.models import hub as ptv_hub

    torch.manual_seed(0)
    with torch.device(device):
        return getattr(ptv_hub, name)(pretrained=False).eval()


def shapes_only(state):
    """The state dict's names and shapes, with no memory behind them (only shapes are compared)."""
    return {k: torch.zeros(()).expand(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("name", PTV)
def test_every_tensor_of_each_ptv_hub_model_finds_its_place_with_its_shape(name):
    state = shapes_only(hub(name[len("ptv/"):], device="meta").state_dict())
    with torch.device("meta"):
        model = PRESETS[name](num_classes=400)
    report, to_load, _ = _prepare(model, {"model_state": state}, allow_2d=False, target_name=name)
    assert report.kind == "pytorchvideo" and not (report.missing or report.unused or report.mismatched)
    assert not report.note and len(to_load) == len(model.state_dict())


# ---------------------------------------------------------------------------- PyTorchVideo -> PySlowFast

_BLOCK = [("branch1_conv", "branch1"), ("branch1_norm", "branch1_bn"), ("branch2.conv_a", "branch2.a"),
          ("branch2.norm_a", "branch2.a_bn"), ("branch2.norm_b.0", "branch2.b_bn"),
          ("branch2.norm_b.1.block.0", "branch2.se.fc1"), ("branch2.norm_b.1.block.2", "branch2.se.fc2"),
          ("branch2.conv_b", "branch2.b"), ("branch2.norm_b", "branch2.b_bn"), ("branch2.conv_c", "branch2.c"),
          ("branch2.norm_c", "branch2.c_bn")]
_HEAD = [("proj", "head.projection"), ("pool.pre_conv", "head.conv_5"), ("pool.pre_norm", "head.conv_5_bn"),
         ("pool.post_conv", "head.lin_5")]


def pyslowfast_name(key: str) -> str:
    """A PyTorchVideo key as PySlowFast names the same tensor (stage numbering: s1 the stem, s2.. the stages)."""
    index, rest = re.fullmatch(r"blocks\.(\d+)\.(.+)", key).groups()
    stage, pathway = int(index) + 1, 0
    path = re.fullmatch(r"multipathway_blocks\.(\d)\.(.+)", rest)
    if path:
        pathway, rest = int(path.group(1)), path.group(2)
    fusion = re.fullmatch(r"multipathway_fusion\.(conv_fast_to_slow|norm)\.(.+)", rest)
    if fusion:
        return f"s{stage}_fuse.{'conv_f2s' if fusion.group(1) == 'conv_fast_to_slow' else 'bn'}.{fusion.group(2)}"
    if stage == 1:
        part = {"conv.conv_t": "conv_xy", "conv.conv_xy": "conv", "conv": "conv", "norm": "bn"}
        module, param = rest.rsplit(".", 1)
        return f"s1.pathway{pathway}_stem.{part[module]}.{param}"
    block = re.fullmatch(r"res_blocks\.(\d+)\.(.+)", rest)
    if block:
        module, param = block.group(2).rsplit(".", 1)
        return f"s{stage}.pathway{pathway}_res{block.group(1)}.{dict(_BLOCK)[module]}.{param}"
    module, param = rest.rsplit(".", 1)
    return f"{dict(_HEAD)[module]}.{param}"


def randomised(model):
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.copy_(0.2 * torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
    return model


@pytest.fixture(scope="module")
def slowfast_files(tmp_path_factory):
    """ptv/slowfast_r50 as a PyTorchVideo file and as a PySlowFast .pyth file, and the model of the first."""
    folder = tmp_path_factory.mktemp("pyslowfast")
    state = randomised(hub("slowfast_r50")).state_dict()
    torch.save({"model_state": state}, folder / "ptv.pyth")
    pyslowfast = {pyslowfast_name(k): v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save({"model_state": pyslowfast, "epoch": 196, "cfg": "MODEL: ..."}, folder / "SLOWFAST_8x8_R50.pyth")
    model, _ = load_zoo_checkpoint(folder / "ptv.pyth", "ptv/slowfast_r50")
    return folder, pyslowfast, model.state_dict()


def assert_same_state(loaded, expected):
    assert loaded.keys() == expected.keys()
    for key in expected:
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[key], expected[key]), key


def test_a_pyslowfast_pyth_lands_where_the_pytorchvideo_file_of_the_same_network_lands(slowfast_files):
    folder, _, expected = slowfast_files
    model, line = load_zoo_checkpoint(folder / "SLOWFAST_8x8_R50.pyth", "ptv/slowfast_r50")
    assert line.startswith(f"pretrained {folder / 'SLOWFAST_8x8_R50.pyth'} [pyslowfast]: loaded ")
    assert "missing 0, unused 0, head loaded" in line and "note" not in line
    assert_same_state(model.state_dict(), expected)


def test_a_pyslowfast_x3d_with_its_first_stage_shortcut_norm_loads_with_shortcut_norm_always(tmp_path):
    """PySlowFast's X3D has a BN in its first stage's shortcut where PyTorchVideo's has none."""
    state = randomised(hub("x3d_xs")).state_dict()
    torch.save({"model_state": state}, tmp_path / "ptv.pyth")
    expected = load_zoo_checkpoint(tmp_path / "ptv.pyth", "ptv/x3d_xs")[0].state_dict()
    pyslowfast = {pyslowfast_name(k): v for k, v in state.items()}
    extra_bn = {f"s2.pathway0_res0.branch1_bn.{p}": torch.rand(24) + 0.5 for p in ("weight", "bias", "running_var")}
    pyslowfast.update(extra_bn, **{"s2.pathway0_res0.branch1_bn.running_mean": torch.randn(24)})
    torch.save({"model_state": pyslowfast}, tmp_path / "X3D_XS.pyth")
    with pytest.raises(Action3dError, match=r"X3D_XS.pyth: .*does not fit.*unused s2.pathway0_res0.branch1_bn"):
        load_zoo_checkpoint(tmp_path / "X3D_XS.pyth", "ptv/x3d_xs")
    model, line = load_zoo_checkpoint(tmp_path / "X3D_XS.pyth",
                                      MODEL_PRESETS["ptv/x3d_xs"].model_config(shortcut_norm="always"))
    loaded = model.state_dict()
    assert torch.equal(loaded["backbone.layer1.0.downsample.bn.weight"], extra_bn["s2.pathway0_res0.branch1_bn.weight"])
    assert_same_state({k: v for k, v in loaded.items() if ".layer1.0.downsample.bn." not in k}, expected)


# ---------------------------------------------------------------------------- Caffe2 .pkl

_C2_BN = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}


def caffe2_name(key: str, last_fast_block: dict) -> str:
    """A PySlowFast key as its Caffe2 model zoo named the blob (the inverse of c2_model_loading.py's rules)."""
    module, param = key.rsplit(".", 1)
    stem = re.fullmatch(r"s1\.pathway(\d)_stem\.(conv|bn)", module)
    fuse = re.fullmatch(r"s(\d)_fuse\.(conv_f2s|bn)", module)
    block = re.fullmatch(r"s(\d)\.pathway(\d)_res(\d+)\.branch(1|2)(?:\.([abc]))?(_bn)?", module)
    if stem:
        t = "t_" if stem.group(1) == "1" else ""
        return f"{t}conv1_w" if stem.group(2) == "conv" else f"{t}res_conv1_bn_{_C2_BN[param]}"
    if fuse:
        k = int(fuse.group(1))
        base = "t_pool1_subsample" if k == 1 else f"t_res{k}_{last_fast_block[k]}_branch2c_bn_subsample"
        return f"{base}_w" if fuse.group(2) == "conv_f2s" else f"{base}_bn_{_C2_BN[param]}"
    if block:
        k, pathway, i, branch, part, bn = block.groups()
        name = f"{'t_' if pathway == '1' else ''}res{k}_{i}_branch{branch}{part or ''}"
        return f"{name}_bn_{_C2_BN[param]}" if bn else f"{name}_w"
    return {"weight": "pred_w", "bias": "pred_b"}[param]


class Py2Array:
    """Pickles as a Python 2 numpy array does: `_reconstruct` with str arguments, data as a latin-1 str."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.ascontiguousarray(array)

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        state = (1, self.array.shape, self.array.dtype, False, self.array.tobytes().decode("latin1"))
        return _reconstruct, (np.ndarray, (0,), "b"), state


def write_caffe2(path, pyslowfast):
    fast_blocks = {}
    for key in pyslowfast:
        match = re.match(r"s(\d)\.pathway1_res(\d+)\.", key)
        if match:
            fast_blocks[int(match.group(1)) - 1] = max(fast_blocks.get(int(match.group(1)) - 1, 0), int(match.group(2)))
    blobs = {caffe2_name(k, fast_blocks): Py2Array(v.numpy()) for k, v in pyslowfast.items()}
    blobs.update({"conv1_w_momentum": Py2Array(np.zeros(3, np.float32)), "lr": Py2Array(np.ones(1, np.float32)),
                  "model_iter": Py2Array(np.array([196000], np.int64))})
    with open(path, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)


def test_a_caffe2_pkl_lands_where_the_pytorchvideo_file_of_the_same_network_lands(slowfast_files):
    folder, pyslowfast, expected = slowfast_files
    write_caffe2(folder / "SLOWFAST_8x8_R50.pkl", pyslowfast)
    model, line = load_zoo_checkpoint(folder / "SLOWFAST_8x8_R50.pkl", "ptv/slowfast_r50")
    assert "[pyslowfast-caffe2]: loaded" in line and "missing 0, unused 0, head loaded" in line
    assert_same_state(model.state_dict(), expected)


class Exploit:
    def __reduce__(self):
        import os

        return os.system, ("echo pwned",)


def test_a_pkl_with_code_in_it_is_refused_in_one_line(tmp_path):
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"blobs": {"conv1_w": Exploit()}}, f, protocol=2)
    with pytest.raises(Action3dError) as err:
        load_zoo_checkpoint(tmp_path / "evil.pkl", "ptv/slow_r50", num_classes=400)
    assert "not allowed" in str(err.value) and "\n" not in str(err.value) and "evil.pkl" in str(err.value)
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump({"weights": [1, 2]}, f, protocol=2)
    with pytest.raises(Action3dError, match="without the Caffe2 `blobs`"):
        load_zoo_checkpoint(tmp_path / "plain.pkl", "ptv/slow_r50", num_classes=400)


# ---------------------------------------------------------------------------- made for another preset

def test_a_ptv_file_in_another_preset_of_the_same_tensors_gets_a_note_naming_its_preset(tmp_path):
    torch.save({"model_state": hub("i3d_r50").state_dict()}, tmp_path / "I3D_8x8_R50.pyth")
    lines = []
    build_model(MODEL_PRESETS["i3d_r50"].model_config(num_classes=400, pretrained=str(tmp_path / "I3D_8x8_R50.pyth")),
                log=lines.append)
    [line] = lines
    assert "[pytorchvideo]: loaded 320 tensors" in line and "model=ptv/i3d_r50's" in line and "i3d_r50" in line
    _, same = load_zoo_checkpoint(tmp_path / "I3D_8x8_R50.pyth", "ptv/i3d_r50")
    assert "its layout" not in same


def test_a_file_whose_tensors_do_not_all_fit_is_refused_in_one_line(slowfast_files):
    folder, _, _ = slowfast_files
    with pytest.raises(Action3dError) as err:          # mmaction2's laterals: no BN
        load_zoo_checkpoint(folder / "ptv.pyth", "slowfast_r50_8x8")
    message = str(err.value)
    assert "\n" not in message and "20 tensor name/shape mismatches" in message
    assert "unused blocks.0.multipathway_fusion.norm" in message and "model=ptv/slowfast_r50" in message


# ---------------------------------------------------------------------------- Hara's 3D ResNets

HARA_LAYERS = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
               152: [3, 8, 36, 3], 200: [3, 24, 36, 3]}


def hara_shapes(depth: int, shortcut: str, classes: int) -> dict:
    """Names and shapes of models/resnet.py's `generate_model(depth)` (block_inplanes 64..512, 7x7x7 stem)."""
    bottleneck = depth >= 50
    expansion = 4 if bottleneck else 1

    def bn(name, channels):
        return {f"{name}.{p}": (channels,) for p in ("weight", "bias", "running_mean", "running_var")}

    shapes = {"conv1.weight": (64, 3, 7, 7, 7), **bn("bn1", 64)}
    in_planes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), HARA_LAYERS[depth])):
        for i in range(blocks):
            p = f"layer{stage + 1}.{i}"
            convs = ([(planes, in_planes, 1), (planes, planes, 3), (planes * 4, planes, 1)] if bottleneck else
                     [(planes, in_planes, 3), (planes, planes, 3)])
            for n, (out, inp, k) in enumerate(convs, 1):
                shapes.update({f"{p}.conv{n}.weight": (out, inp, k, k, k), **bn(f"{p}.bn{n}", out)})
            if i == 0 and (stage > 0 or in_planes != planes * expansion) and shortcut == "B":
                shapes.update({f"{p}.downsample.0.weight": (planes * expansion, in_planes, 1, 1, 1),
                               **bn(f"{p}.downsample.1", planes * expansion)})
            in_planes = planes * expansion
    return {**shapes, "fc.weight": (classes, 512 * expansion), "fc.bias": (classes,)}


def ours(hara_key: str) -> str:
    for pattern, template in [(r"conv1\.(.+)", r"backbone.conv1.conv.\1"), (r"bn1\.(.+)", r"backbone.conv1.bn.\1"),
                              (r"(layer.+)\.conv(\d)\.(.+)", r"backbone.\1.conv\2.conv.\3"),
                              (r"(layer.+)\.bn(\d)\.(.+)", r"backbone.\1.conv\2.bn.\3"),
                              (r"(layer.+)\.downsample\.0\.(.+)", r"backbone.\1.downsample.conv.\2"),
                              (r"(layer.+)\.downsample\.1\.(.+)", r"backbone.\1.downsample.bn.\2"),
                              (r"fc\.(.+)", r"cls_head.fc_cls.\1")]:
        if re.fullmatch(pattern, hara_key):
            return re.sub(pattern, template, hara_key)
    raise AssertionError(hara_key)


@pytest.mark.parametrize("depth", sorted(HARA_LAYERS))
def test_each_hara_preset_has_his_models_tensors(depth):
    with torch.device("meta"):
        model = PRESETS[f"hara/resnet{depth}"](num_classes=700)
    state = {k: v.shape for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert state == {ours(k): torch.Size(v) for k, v in hara_shapes(depth, "B", 700).items()}


@pytest.mark.parametrize("release, depth, shortcut", [("2018", 18, "A"), ("2020", 18, "B"), ("2018", 50, "B")])
def test_hara_checkpoints_of_both_releases_land_tensor_by_tensor(release, depth, shortcut, tmp_path):
    """2018: `module.`-prefixed keys from DataParallel, shortcut A at depths 18/34, 400 classes;
    2020: plain keys, shortcut B, 700 classes (Kinetics-700)."""
    generator = torch.Generator().manual_seed(depth)
    classes = 400 if release == "2018" else 700
    state = {k: torch.randn(shape, generator=generator) for k, shape in hara_shapes(depth, shortcut, classes).items()}
    prefix = "module." if release == "2018" else ""
    path = tmp_path / f"resnet-{depth}-{release}.pth"
    torch.save({"epoch": 200, "arch": f"resnet-{depth}", "state_dict": {prefix + k: v for k, v in state.items()},
                "optimizer": {}}, path)
    model, line = load_zoo_checkpoint(path, MODEL_PRESETS[f"hara/resnet{depth}"].model_config(shortcut_type=shortcut))
    assert "[hara]: loaded" in line and "missing 0, unused 0, head loaded" in line and "layout" not in line
    loaded = model.state_dict()
    for key, tensor in state.items():
        assert torch.equal(loaded[ours(key)], tensor), key


def test_hara_files_that_are_not_his_resnets_or_need_shortcut_a_are_refused_naming_what_fits(tmp_path):
    torch.save({"arch": "resnext-101", "state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7, 7)}},
               tmp_path / "resnext.pth")
    with pytest.raises(Action3dError, match=r"resnext-101; action3d builds only his ResNets .* model=hara/resnet101"):
        load_zoo_checkpoint(tmp_path / "resnext.pth", "hara/resnet18", num_classes=400)
    state = {k: torch.zeros(shape) for k, shape in hara_shapes(18, "A", 400).items()}
    torch.save({"arch": "resnet-18", "state_dict": state}, tmp_path / "resnet-18-kinetics.pth")
    with pytest.raises(Action3dError, match=r"missing backbone.layer2.0.downsample.*model.shortcut_type=A"):
        load_zoo_checkpoint(tmp_path / "resnet-18-kinetics.pth", "hara/resnet18")
