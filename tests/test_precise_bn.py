"""Precise BN: running statistics recomputed as a plain average, frozen BN layers untouched."""
import torch
from torch import nn

from action3d.engine.precise_bn import recompute_bn_stats


class TwoBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.frozen = nn.BatchNorm3d(2)
        self.live = nn.BatchNorm3d(2)

    def train(self, mode=True):
        super().train(mode)
        self.frozen.eval()  # like ResNet3d's frozen_stages / norm_eval
        return self

    def forward(self, x):
        return self.live(self.frozen(x))


def test_recomputed_stats_are_the_average_over_batches_and_frozen_bn_is_kept():
    torch.manual_seed(0)
    model = TwoBN()
    model.frozen.running_mean.fill_(0.5)
    model.frozen.running_var.fill_(2.0)
    model.live.running_mean.fill_(123.0)            # stale statistics from old weights
    batches = [torch.randn(4, 2, 3, 5, 5) * (i + 1) + i for i in range(3)]
    assert recompute_bn_stats(model.eval(), iter(batches)) == 3
    assert not model.training, "the caller's mode is restored"
    inputs = [(b - 0.5) / (2.0 + 1e-5) ** 0.5 for b in batches]   # what `live` sees after `frozen`
    expected_mean = torch.stack([x.mean(dim=(0, 2, 3, 4)) for x in inputs]).mean(0)
    expected_var = torch.stack([x.var(dim=(0, 2, 3, 4)) for x in inputs]).mean(0)
    assert torch.allclose(model.live.running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(model.live.running_var, expected_var, atol=1e-4)
    assert torch.equal(model.frozen.running_mean, torch.full((2,), 0.5))
    assert model.live.momentum == 0.1, "momentum restored"
