"""SlowFast pathways and laterals, SlowFast head, non-local blocks (tiny widths)."""
import pytest
import torch
from torch import nn

from action3d.models import NonLocal3d, ResNet3d, ResNet3dSlowFast, SlowFastHead


def assert_every_parameter_gets_a_gradient(model, x):
    for m in model.modules():  # non-zero BN scales: zero-initialised ones block gradients
        if isinstance(m, nn.BatchNorm3d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
    slow, fast = model.train()(x)
    (slow.mean() ** 2 + fast.mean() ** 2).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not no_grad


def slowfast(depth=18, base=16, tau=8, alpha=4, beta_inv=4, fusion_kernel=5, **opts):
    return ResNet3dSlowFast(
        resample_rate=tau, speed_ratio=alpha, channel_ratio=beta_inv, fusion_kernel=fusion_kernel,
        slow_pathway=dict(depth=depth, base_channels=base, **opts),
        fast_pathway=dict(depth=depth, base_channels=base // beta_inv, **opts))


@pytest.mark.parametrize("t, tau, alpha", [(8, 8, 4), (16, 4, 4), (20, 8, 4), (32, 8, 8),
                                           (12, 4, 2), (32, 4, 4)])
def test_pathway_shapes_for_several_clip_lengths(t, tau, alpha):
    model = slowfast(base=8, tau=tau, alpha=alpha).eval()
    slow, fast = model(torch.randn(1, 3, t, 32, 32))
    t_slow = -(-t // tau)                       # every tau-th frame: ceil(T / tau)
    t_fast = -(-t // (tau // alpha))            # alpha times as many
    assert slow.shape == (1, 64, t_slow, 1, 1)  # depth 18: 8 * base channels
    assert fast.shape == (1, 16, t_fast, 1, 1)  # 1/beta of them


def test_pathways_see_every_tau_th_and_every_tau_over_alpha_th_frame():
    model = slowfast(tau=8, alpha=4)
    seen = {}
    model.slow_path.conv1.register_forward_pre_hook(lambda m, i: seen.update(slow=i[0]) or None)
    model.fast_path.conv1.register_forward_pre_hook(lambda m, i: seen.update(fast=i[0]) or None)
    x = torch.arange(16.0).view(1, 1, 16, 1, 1).expand(1, 3, 16, 32, 32)
    model.eval()(x)
    assert seen["slow"][0, 0, :, 0, 0].tolist() == [0, 8]
    assert seen["fast"][0, 0, :, 0, 0].tolist() == [0, 2, 4, 6, 8, 10, 12, 14]


@pytest.mark.parametrize("depth, fusion_kernel", [(18, 5), (50, 7)])
def test_laterals_add_channels_to_the_slow_pathway(depth, fusion_kernel):
    base, alpha, beta_inv = 16, 4, 4
    model = slowfast(depth=depth, base=base, alpha=alpha, beta_inv=beta_inv,
                     fusion_kernel=fusion_kernel)
    slow_only = ResNet3d(depth, base_channels=base)
    slow, fast = model.slow_path, model.fast_path
    assert slow.lateral_connections == ["conv1_lateral", "layer1_lateral", "layer2_lateral",
                                        "layer3_lateral"]
    assert not hasattr(slow, "layer4_lateral") and not fast.lateral_connections
    fused_channels = [base] + slow.stage_channels[:3]       # slow C after stem, stages 1-3
    for i, (name, c) in enumerate(zip(slow.lateral_connections, fused_channels)):
        conv = getattr(slow, name).conv
        assert conv.in_channels == c // beta_inv               # the fast channels at that point
        assert conv.out_channels == 2 * c // beta_inv          # 2x the fast channels
        assert conv.kernel_size == (fusion_kernel, 1, 1) and conv.stride == (alpha, 1, 1)
        assert conv.padding == (fusion_kernel // 2, 0, 0) and conv.bias is None
        assert getattr(slow, name).bn is None                  # conv only, as mmaction2
        stage = getattr(slow, f"layer{i + 1}")[0]
        plain = getattr(slow_only, f"layer{i + 1}")[0]
        assert stage.conv1.conv.in_channels == plain.conv1.conv.in_channels + 2 * c // beta_inv
        assert stage.downsample.conv.in_channels == stage.conv1.conv.in_channels


def test_slowfast_r50_default_is_mmaction2_4x16_layout():
    with torch.device("meta"):
        model = ResNet3dSlowFast()
    slow, fast = model.slow_path, model.fast_path
    assert slow.conv1.conv.kernel_size == (1, 7, 7) and fast.conv1.conv.kernel_size == (5, 7, 7)
    assert slow.layer1[0].conv1.conv.in_channels == 64 + 16
    assert slow.layer2[0].conv1.conv.in_channels == 256 + 64
    assert slow.layer4[0].conv1.conv.in_channels == 1024 + 256
    assert slow.layer2[0].conv1.conv.kernel_size == (1, 1, 1)      # inflate (0, 0, 1, 1)
    assert slow.layer3[0].conv1.conv.kernel_size == (3, 1, 1)
    assert fast.layer1[0].conv1.conv.kernel_size == (3, 1, 1)      # fast: all inflated
    assert model.feat_dims == (2048, 256)


def test_slowfast_names_and_gradients():
    model = slowfast(depth=18, base=8, tau=4, alpha=2, beta_inv=4)
    keys = set(model.state_dict())
    for key in ("slow_path.conv1_lateral.conv.weight", "slow_path.layer3_lateral.conv.weight",
                "slow_path.layer1.0.conv1.conv.weight", "fast_path.layer4.1.conv2.bn.weight"):
        assert key in keys
    assert_every_parameter_gets_a_gradient(model, torch.randn(2, 3, 8, 32, 32))


def test_slowfast_frozen_stages_freeze_laterals_of_frozen_sources():
    model = slowfast(frozen_stages=1).train()
    slow = model.slow_path
    for module in (slow.conv1, slow.layer1, slow.conv1_lateral, slow.layer1_lateral,
                   model.fast_path.conv1, model.fast_path.layer1):
        assert all(not p.requires_grad for p in module.parameters())
    assert all(p.requires_grad for p in slow.layer2_lateral.parameters())
    assert all(p.requires_grad for p in slow.layer2.parameters())


def test_slowfast_channels_last_matches_contiguous():
    model = slowfast(depth=50, base=8, tau=4, alpha=2, beta_inv=4).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    ref = model(x)
    model = model.to(memory_format=torch.channels_last_3d)
    out = model(x.to(memory_format=torch.channels_last_3d))
    for a, b in zip(out, ref):
        assert (a - b).abs().max() <= 1e-4 * b.abs().max()


@pytest.mark.parametrize("kwargs, words", [
    ({"resample_rate": 8, "speed_ratio": 3}, ["resample_rate", "speed_ratio"]),
    ({"channel_ratio": 4}, ["base_channels", "channel_ratio"]),  # fast 8 != 64 / 4
    ({"fusion_kernel": 0}, ["fusion_kernel"]),
])
def test_slowfast_invalid_arguments(kwargs, words):
    with pytest.raises(ValueError) as err, torch.device("meta"):
        ResNet3dSlowFast(**kwargs)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_slowfast_head_pools_both_pathways_fast_first_like_mmaction2():
    head = SlowFastHead(6 + 2, 3, dropout=0.0).eval()
    slow = torch.zeros(2, 6, 4, 2, 2)
    fast = torch.ones(2, 2, 16, 2, 2) * torch.tensor([1.0, 2.0]).view(1, 2, 1, 1, 1)
    pooled = head.pool((slow, fast))
    assert pooled.shape == (2, 8)
    assert pooled[0].tolist() == [1.0, 2.0, 0, 0, 0, 0, 0, 0]
    assert head((slow, fast)).shape == (2, 3)


def test_non_local_starts_as_identity_and_keeps_shape():
    block = NonLocal3d(8, sub_sample=True).train()
    x = torch.randn(2, 8, 4, 6, 6)
    assert torch.equal(block(x), x)
    keys = set(block.state_dict())
    assert {"g.0.conv.weight", "g.0.conv.bias", "phi.0.conv.weight", "theta.conv.weight",
            "theta.conv.bias", "conv_out.conv.weight", "conv_out.bn.weight"} <= keys
    assert "conv_out.conv.bias" not in keys


def test_non_local_embedded_gaussian_is_softmax_attention():
    torch.manual_seed(0)
    block = NonLocal3d(8, mode="embedded_gaussian").eval()
    nn.init.ones_(block.conv_out.bn.weight)
    nn.init.zeros_(block.theta.conv.weight)            # equal affinities: softmax is uniform,
    x = torch.randn(1, 8, 2, 3, 3)                      # so every position gets mean(g(x))
    mean_g = block.g(x).mean(dim=(2, 3, 4), keepdim=True).expand(1, 4, 2, 3, 3)
    assert torch.allclose(block(x), x + block.conv_out(mean_g), atol=1e-6)


def test_non_local_modes_differ_and_sub_sample_pools_keys():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 2, 4, 4)
    outs = {}
    for mode in ("embedded_gaussian", "dot_product"):
        torch.manual_seed(1)
        block = NonLocal3d(8, mode=mode).eval()
        nn.init.ones_(block.conv_out.bn.weight)
        outs[mode] = block(x)
    assert not torch.allclose(outs["embedded_gaussian"], outs["dot_product"])
    block = NonLocal3d(8, sub_sample=True)
    assert block.phi(x).shape == (1, 4, 2, 2, 2) and block.theta(x).shape == (1, 4, 2, 4, 4)


def test_non_local_flags_place_blocks_after_flagged_blocks():
    model = ResNet3d(50, base_channels=4, non_local=((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1),
                                                     (0, 0, 0)), non_local_mode="dot_product")
    placed = [name for name, m in model.named_modules() if isinstance(m, NonLocal3d)]
    assert placed == ["layer2.1.non_local_block", "layer2.3.non_local_block",
                      "layer3.1.non_local_block", "layer3.3.non_local_block",
                      "layer3.5.non_local_block"]
    assert model.layer2[1].non_local_block.mode == "dot_product"
    assert model.eval()(torch.randn(1, 3, 4, 32, 32)).shape == (1, 128, 2, 1, 1)
