"""ResNet3d options: each one changes the network as documented (tiny widths, small clips)."""
import pytest
import torch
from torch import nn

from action3d.models import BasicBlock3d, Bottleneck3d, ConvBNAct, ResNet3d, ShortcutA


def clip(n=2, t=8, size=32):
    torch.manual_seed(0)
    return torch.randn(n, 3, t, size, size)


def conv_out(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def expected_shapes(t, size, *, base=4, expansion=1, num_stages=4, conv1_kernel=(3, 7, 7),
                    conv1_stride=(1, 2), pool1_stride=(1, 2), with_pool1=True, with_pool2=True,
                    spatial_strides=(1, 2, 2, 2), temporal_strides=(1, 1, 1, 1)):
    """Stage output shapes (C, T, H) by the stride arithmetic of mmaction2's ResNet3d."""
    kt, ks = conv1_kernel[0], conv1_kernel[1]
    t = conv_out(t, kt, conv1_stride[0], (kt - 1) // 2)
    size = conv_out(size, ks, conv1_stride[1], (ks - 1) // 2)
    if with_pool1:  # 1x3x3 max-pool, padding (0, 1, 1)
        t = conv_out(t, 1, pool1_stride[0], 0)
        size = conv_out(size, 3, pool1_stride[1], 1)
    shapes = []
    for i in range(num_stages):
        # every strided conv of a block (3x3 pad 1 or 1x1 pad 0) gives floor((n-1)/s)+1
        t = (t - 1) // temporal_strides[i] + 1
        size = (size - 1) // spatial_strides[i] + 1
        if i == 0 and with_pool2:
            t = t // 2
        shapes.append((base * 2 ** i * expansion, t, size))
    return shapes


@pytest.mark.parametrize("opts", [
    {},
    {"with_pool2": False},
    {"with_pool1": False},
    {"conv1_stride": (2, 2), "pool1_stride": (2, 2)},
    {"conv1_stride": (1, 1), "pool1_stride": (1, 1), "with_pool2": False},
    {"conv1_kernel": (5, 7, 7), "conv1_stride": (2, 2)},
    {"conv1_kernel": (1, 3, 3)},
    {"spatial_strides": (1, 1, 2, 1), "temporal_strides": (1, 2, 1, 2), "with_pool2": False},
    {"spatial_strides": (2, 2, 2, 2), "temporal_strides": (2, 1, 1, 1)},
    {"num_stages": 2, "spatial_strides": (1, 2), "temporal_strides": (1, 2)},
    {"num_stages": 3},
])
@pytest.mark.parametrize("depth", [18, 50])
def test_output_shapes_follow_stride_arithmetic(depth, opts):
    model = ResNet3d(depth, base_channels=4, out_indices=tuple(range(opts.get("num_stages", 4))),
                     stage_blocks=(1, 1, 1, 1), **opts).eval()
    x = clip(t=9, size=37)  # odd sizes exercise the floor/ceil arithmetic
    outs = model(x)
    expansion = 4 if depth == 50 else 1
    want = expected_shapes(9, 37, expansion=expansion, **opts)
    assert [tuple(o.shape) for o in outs] == [(2, c, t, s, s) for c, t, s in want]


def test_out_indices_single_gives_tensor_and_several_give_tuple_in_stage_order():
    x = clip()
    single = ResNet3d(18, base_channels=4, out_indices=(2,)).eval()(x)
    assert isinstance(single, torch.Tensor) and single.shape[1] == 16
    several = ResNet3d(18, base_channels=4, out_indices=(3, 0)).eval()(x)
    assert isinstance(several, tuple) and [o.shape[1] for o in several] == [4, 32]


def test_dilation_sets_spatial_dilation_and_keeps_sizes():
    plain = ResNet3d(50, base_channels=4, stage_blocks=(1, 1, 1, 1))
    dilated = ResNet3d(50, base_channels=4, stage_blocks=(1, 1, 1, 1), dilations=(1, 1, 2, 4),
                       spatial_strides=(1, 2, 1, 1))
    conv = dilated.layer4[0].conv2.conv
    assert conv.dilation == (1, 4, 4) and conv.padding == (0, 4, 4)
    assert plain.layer4[0].conv2.conv.dilation == (1, 1, 1)
    out = dilated.eval()(clip())
    assert out.shape == (2, 128, 4, 4, 4)  # no spatial stride after stage 2: 8 -> 4 only


def test_style_puts_the_stride_on_a_different_conv():
    opts = dict(base_channels=4, stage_blocks=(1, 1, 1, 1), temporal_strides=(1, 2, 1, 1))
    pytorch = ResNet3d(50, **opts)
    caffe = ResNet3d(50, style="caffe", **opts)
    assert pytorch.layer2[0].conv1.conv.stride == (1, 1, 1)
    assert pytorch.layer2[0].conv2.conv.stride == (2, 2, 2)
    assert caffe.layer2[0].conv1.conv.stride == (2, 2, 2)
    assert caffe.layer2[0].conv2.conv.stride == (1, 1, 1)
    x = clip()
    assert pytorch.eval()(x).shape == caffe.eval()(x).shape


@pytest.mark.parametrize("block, inflate, style, kernels", [
    (18, 1, "3x1x1", [(3, 3, 3), (3, 3, 3)]),
    (18, 0, "3x1x1", [(1, 3, 3), (1, 3, 3)]),
    (50, 1, "3x1x1", [(3, 1, 1), (1, 3, 3), (1, 1, 1)]),
    (50, 1, "3x3x3", [(1, 1, 1), (3, 3, 3), (1, 1, 1)]),
    (50, 0, "3x3x3", [(1, 1, 1), (1, 3, 3), (1, 1, 1)]),
])
def test_inflation_kernels_per_block_type(block, inflate, style, kernels):
    model = ResNet3d(block, base_channels=4, inflate=inflate, inflate_style=style)
    first = model.layer1[0]
    convs = [first.conv1, first.conv2] + ([first.conv3] if block == 50 else [])
    assert [c.conv.kernel_size for c in convs] == kernels
    # temporal padding keeps the clip length
    assert model.eval()(clip(t=8)).shape[2] == 4  # 8 frames, pool2 halves them


def test_per_block_inflate_tuple():
    inflate = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
    model = ResNet3d(50, base_channels=4, inflate=inflate)
    got = tuple(tuple(int(b.conv1.conv.kernel_size[0] == 3) for b in getattr(model, f"layer{i}"))
                for i in range(1, 5))
    assert got == inflate


def test_advanced_downsample_average_pools_then_convolves():
    x = clip()
    plain = ResNet3d(50, base_channels=4, stage_blocks=(1, 1, 1, 1))
    advanced = ResNet3d(50, base_channels=4, stage_blocks=(1, 1, 1, 1), advanced=True)
    down = advanced.layer2[0].downsample
    assert isinstance(down, nn.Sequential) and isinstance(down[0], nn.AvgPool3d)
    assert down[1].conv.stride == (1, 1, 1)
    assert plain.layer2[0].downsample.conv.stride == (1, 2, 2)
    assert "layer2.0.downsample.1.conv.weight" in advanced.state_dict()
    assert "layer1.0.downsample.1.conv.weight" in advanced.state_dict()  # stride 1: Identity pool
    assert advanced.eval()(x).shape == plain.eval()(x).shape


def test_temporal_stride_alone_gets_a_downsample():
    model = ResNet3d(18, base_channels=4, temporal_strides=(2, 1, 1, 1), with_pool2=False)
    assert model.layer1[0].downsample is not None  # spatial stride 1, channels unchanged
    assert ResNet3d(18, base_channels=4).layer1[0].downsample is None
    assert model.eval()(clip(t=8)).shape[2] == 4


def test_shortcut_a_is_parameter_free_strided_identity_with_zero_channels():
    a = ResNet3d(18, base_channels=4, shortcut_type="A")
    b = ResNet3d(18, base_channels=4)
    down = a.layer2[0].downsample
    assert isinstance(down, ShortcutA) and not list(down.parameters())
    n_b_down = sum(p.numel() for n, p in b.named_parameters() if "downsample" in n)
    n_params = [sum(p.numel() for p in m.parameters()) for m in (a, b)]
    assert n_params[0] == n_params[1] - n_b_down
    x = torch.randn(2, 4, 5, 9, 9)
    y = down(x)
    assert y.shape == (2, 8, 5, 5, 5)
    assert torch.equal(y[:, :4], x[:, :, :, ::2, ::2]) and not y[:, 4:].any()
    assert a.eval()(clip()).shape == b.eval()(clip()).shape


def test_module_names_follow_mmaction2():
    keys = set(ResNet3d(50, base_channels=4).state_dict())
    for key in ("conv1.conv.weight", "conv1.bn.weight", "conv1.bn.running_mean",
                "layer1.0.conv1.conv.weight", "layer1.0.conv3.bn.bias",
                "layer1.0.downsample.conv.weight", "layer1.0.downsample.bn.weight",
                "layer4.2.conv2.conv.weight"):
        assert key in keys
    assert not any(k.endswith("conv.bias") for k in keys)  # a BN follows every conv
    model = ResNet3d(18, base_channels=4)
    assert isinstance(model.conv1, ConvBNAct) and isinstance(model.maxpool, nn.MaxPool3d)
    assert isinstance(model.pool2, nn.MaxPool3d) and isinstance(model.layer1[0], BasicBlock3d)
    assert isinstance(ResNet3d(101, base_channels=4).layer3[22], Bottleneck3d)


def test_frozen_stages_no_grad_and_bn_eval_after_train():
    model = ResNet3d(18, base_channels=4, frozen_stages=2, zero_init_residual=False)
    model.train()
    frozen = [model.conv1, model.layer1, model.layer2]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules() if isinstance(m, nn.BatchNorm3d))
    for module in (model.layer3, model.layer4):
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules() if isinstance(m, nn.BatchNorm3d))
    model(clip()).sum().backward()
    assert all(p.grad is None for m in frozen for p in m.parameters())
    assert all(p.grad is not None for p in model.layer3.parameters())


def test_norm_eval_keeps_every_bn_in_eval_mode():
    model = ResNet3d(18, base_channels=4, norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    assert bns and all(not bn.training for bn in bns)
    before = bns[0].running_mean.clone()
    model(clip() * 3 + 1)
    assert torch.equal(bns[0].running_mean, before)  # statistics frozen
    assert all(m.training for m in ResNet3d(18, base_channels=4).train().modules()
               if isinstance(m, nn.BatchNorm3d))


@pytest.mark.parametrize("depth", [18, 50])
def test_with_cp_gives_the_same_gradients(depth):
    torch.manual_seed(1)
    ref = ResNet3d(depth, base_channels=4, zero_init_residual=False).train()
    ckpt = ResNet3d(depth, base_channels=4, zero_init_residual=False, with_cp=True).train()
    ckpt.load_state_dict(ref.state_dict())
    x = clip(t=4)
    for model in (ref, ckpt):
        (model(x) ** 2).mean().backward()
    for (name, p), q in zip(ref.named_parameters(), ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("depth", [18, 50])
def test_zero_init_residual_makes_blocks_start_as_identity(depth):
    model = ResNet3d(depth, base_channels=4).train()
    identity_blocks = [b for i in range(1, 5) for b in getattr(model, f"layer{i}")
                       if b.downsample is None]
    assert identity_blocks
    for block in identity_blocks:
        channels = block.last_bn().num_features
        x = torch.rand(2, channels, 4, 6, 6)  # x >= 0: the final ReLU keeps it
        assert torch.equal(block(x), x)
    off = ResNet3d(depth, base_channels=4, zero_init_residual=False)
    assert all(b.last_bn().weight.abs().sum() > 0 for b in off.layer1)


def assert_every_parameter_gets_a_gradient(model, x):
    # Non-zero BN scales everywhere: zero-initialised BNs (residual, non-local output) would
    # legitimately block the gradient of the convs before them.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
    out = model.train()(x)
    out = torch.cat([o.flatten(1) for o in out], 1) if isinstance(out, tuple) else out
    (out ** 2).mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not no_grad


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_every_parameter_gets_a_gradient_for_each_depth(depth):
    model = ResNet3d(depth, base_channels=4 if depth < 101 else 2)
    assert_every_parameter_gets_a_gradient(model, clip(t=4, size=32))


@pytest.mark.parametrize("inflate_style", ["3x1x1", "3x3x3"])
@pytest.mark.parametrize("depth", [18, 50])
def test_every_parameter_gets_a_gradient_for_each_inflate_style(depth, inflate_style):
    model = ResNet3d(depth, base_channels=4, inflate=(1, 0, 1, 1), inflate_style=inflate_style)
    assert_every_parameter_gets_a_gradient(model, clip(t=4, size=32))


def test_every_parameter_gets_a_gradient_with_non_local_and_shortcut_a():
    model = ResNet3d(50, base_channels=4, non_local=(0, (0, 1, 0, 1), 1, 0),
                     non_local_sub_sample=True, shortcut_type="A", advanced=True)
    assert_every_parameter_gets_a_gradient(model, clip(t=4, size=32))


@pytest.mark.parametrize("opts", [
    {"depth": 18},
    {"depth": 50, "non_local": (0, 1, 1, 0), "non_local_sub_sample": True},
    {"depth": 50, "advanced": True, "shortcut_type": "B", "style": "caffe"},
    {"depth": 18, "shortcut_type": "A"},
])
def test_channels_last_3d_gives_the_same_output(opts):
    torch.manual_seed(0)
    model = ResNet3d(base_channels=8, zero_init_residual=False, **opts).eval()
    x = clip(t=4, size=32)
    ref = model(x)
    model = model.to(memory_format=torch.channels_last_3d)
    out = model(x.to(memory_format=torch.channels_last_3d))
    # different conv algorithms: equal up to float32 rounding accumulated over the depth
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_kaiming_init_of_convs():
    torch.manual_seed(0)
    model = ResNet3d(50, base_channels=16)
    w = model.layer3[0].conv2.conv.weight  # fan_out = 64 * 1 * 3 * 3
    assert abs(w.std().item() - (2 / (64 * 9)) ** 0.5) < 0.01
    assert all(m.weight.eq(1).all() for m in model.conv1.modules() if isinstance(m, nn.BatchNorm3d))


@pytest.mark.parametrize("kwargs, words", [
    ({"depth": 19}, ["depth", "18, 34, 50, 101, 152"]),
    ({"depth": 18, "num_stages": 5}, ["num_stages"]),
    ({"depth": 18, "spatial_strides": (1, 2)}, ["spatial_strides", "num_stages=4"]),
    ({"depth": 18, "inflate": ((1, 0, 1), 1, 1, 1)}, ["inflate", "stage 1 has 2 blocks"]),
    ({"depth": 18, "inflate": (2, 1, 1, 1)}, ["inflate", "0 or 1"]),
    ({"depth": 18, "inflate_style": "3x2x1"}, ["inflate_style", "3x1x1"]),
    ({"depth": 18, "style": "keras"}, ["style"]),
    ({"depth": 18, "shortcut_type": "C"}, ["shortcut_type"]),
    ({"depth": 18, "out_indices": (4,)}, ["out_indices"]),
    ({"depth": 18, "frozen_stages": 5}, ["frozen_stages"]),
    ({"depth": 18, "conv1_kernel": (3, 7)}, ["conv1_kernel"]),
    ({"depth": 18, "temporal_strides": (1, 0, 1, 1)}, ["temporal_strides", ">= 1"]),
    ({"depth": 18, "non_local_mode": "gaussian"}, ["non_local_mode"]),
])
def test_invalid_arguments_raise_value_error_naming_the_argument(kwargs, words):
    with pytest.raises(ValueError) as err:
        ResNet3d(**kwargs)
    assert all(w in str(err.value) for w in words), str(err.value)
