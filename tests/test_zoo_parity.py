"""Native-size parity with the zoos, one model per family: random weights with non-trivial BN
statistics, saved in the zoo's own file layout, loaded into action3d's preset by
`load_zoo_checkpoint` (what `model.pretrained=FILE` and `eval ckpt=FILE zoo=...` run); on one view
(the same input tensor) action3d's logits equal the zoo model's forward within
max|a-b| <= 1e-4 * max|b| in fp32. PyTorchVideo's X3D and R(2+1)D hub models end in a softmax in
eval mode: their probabilities are compared. PyTorchVideo's SlowFast takes the two pathways as a
list: the slow one is PackPathway's `linspace` pick of the frames (`model.slow_sampling=linspace`).
"""
from __future__ import annotations

import warnings

import pytest
import torch

from action3d.models import load_zoo_checkpoint

# (hub model, native input (C, T, H, W) at the 224-px training crop its head pools over)
PTV_CASES = [("slow_r50", (3, 8, 224, 224)), ("slowfast_r50", (3, 32, 224, 224)), ("csn_r101", (3, 32, 224, 224)),
             ("r2plus1d_r50", (3, 16, 224, 224)), ("x3d_xs", (3, 4, 160, 160))]
SOFTMAX = ("r2plus1d_r50", "x3d_xs")


@pytest.fixture(autouse=True, scope="module")
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def randomise_bn(model: torch.nn.Module) -> torch.nn.Module:
    """BN statistics and affine parameters away from their initial values, so that each one shows."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.copy_(0.2 * torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    return model.eval()


def assert_parity(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    difference, scale = (ours - theirs).abs().max().item(), theirs.abs().max().item()
    assert ours.shape == theirs.shape and difference <= 1e-4 * scale, (difference, scale)


@pytest.mark.slow
@pytest.mark.parametrize("name, shape", PTV_CASES, ids=[name for name, _ in PTV_CASES])
def test_ptv_hub_model_and_its_preset_give_the_same_output(name, shape, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)       # pytorchvideo 0.1.5 calls torch.jit.script on import
        from pytorchvideo.models import hub

    torch.manual_seed(0)
    reference = randomise_bn(getattr(hub, name)(pretrained=False))
    torch.save({"model_state": reference.state_dict()}, tmp_path / f"{name}.pyth")
    model, line = load_zoo_checkpoint(tmp_path / f"{name}.pyth", f"ptv/{name}")
    assert "[pytorchvideo]: loaded" in line and "missing 0, unused 0, head loaded" in line
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        if name.startswith("slowfast"):
            slow = x.index_select(2, torch.linspace(0, shape[1] - 1, shape[1] // 4).long())
            theirs = reference([slow, x])
        else:
            theirs = reference(x)
        ours = model.eval()(x)
    assert_parity(ours.softmax(-1) if name in SOFTMAX else ours, theirs)


@pytest.mark.slow
def test_torchvision_r2plus1d_18_and_its_preset_give_the_same_logits(tmp_path):
    from torchvision.models.video import r2plus1d_18

    torch.manual_seed(0)
    reference = randomise_bn(r2plus1d_18())
    torch.save(reference.state_dict(), tmp_path / "r2plus1d_18.pth")
    model, line = load_zoo_checkpoint(tmp_path / "r2plus1d_18.pth", "r2plus1d_18")
    assert "[torchvision-video]: loaded 224 tensors, missing 0, unused 0, head loaded" in line
    x = torch.randn(1, 3, 16, 112, 112, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert_parity(model.eval()(x), reference(x))
