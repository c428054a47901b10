"""Recognizer: backbone + classification head, mapping clips to class logits."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Recognizer(nn.Module):
    """`forward(x)` with `x` `(N, C, T, H, W)` float returns logits `(N, num_classes)`.

    A multi-view batch `(N, V, C, T, H, W)` returns per-view logits `(N, V, num_classes)`; how
    views are combined (mean of scores or of probabilities) is the caller's choice.
    State-dict keys are `backbone.*` and `cls_head.*`, as in mmaction2's Recognizer3D.
    """

    def __init__(self, backbone: nn.Module, cls_head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = cls_head

    @property
    def num_classes(self) -> int:
        return self.cls_head.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 6:
            n, v = x.shape[:2]
            return self.forward(x.flatten(0, 1)).unflatten(0, (n, v))  # (N, V, num_classes)
        if x.dim() != 5:
            raise ValueError(f"expected clips (N, C, T, H, W) or (N, V, C, T, H, W), "
                             f"got shape {tuple(x.shape)}")
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: torch.Tensor) -> Any:
        """Clips (N, C, T, H, W) -> the backbone's features (a tensor; SlowFast: the (slow, fast) pair)."""
        return self.backbone(x)

    def forward_head(self, features: Any) -> torch.Tensor:
        """The backbone's features -> logits (N, num_classes)."""
        return self.cls_head(features)
