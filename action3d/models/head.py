"""Classification heads: global average pool, dropout, linear (mmaction2's I3DHead/SlowFastHead)."""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch
from torch import nn

from action3d.config.model_checks import check_model_argument

Features = Union[torch.Tensor, Sequence[torch.Tensor]]


class I3DHead(nn.Module):
    """Average-pool over T, H and W (any clip length and crop size), dropout, `fc_cls`.

    Given a tuple of stage features (several `out_indices`) it classifies the last one.
    """

    def __init__(self, in_channels: int, num_classes: int, *, dropout: float = 0.5,
                 init_std: float = 0.01) -> None:
        super().__init__()
        check_model_argument("dropout", dropout)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc_cls = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc_cls.weight, std=init_std)
        nn.init.zeros_(self.fc_cls.bias)

    def pool(self, feats: Features) -> torch.Tensor:
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        return self.avg_pool(x).flatten(1)               # (N, C)

    def forward(self, feats: Features) -> torch.Tensor:
        x = self.dropout(self.pool(feats))
        return self.fc_cls(x)                            # (N, num_classes)


class SlowFastHead(I3DHead):
    """Pools the (slow, fast) pair and classifies their concatenation.

    The order is fast then slow, as in mmaction2's SlowFastHead (its unpacking swaps the names),
    so that mmaction2 `cls_head.fc_cls` weights line up column for column.
    """

    def pool(self, feats: Features) -> torch.Tensor:
        slow, fast = feats                               # (N, Cs, Ts, h, w), (N, Cf, Tf, h, w)
        pooled: Tuple[torch.Tensor, torch.Tensor] = (self.avg_pool(fast).flatten(1),
                                                     self.avg_pool(slow).flatten(1))
        return torch.cat(pooled, dim=1)                  # (N, Cf + Cs)
