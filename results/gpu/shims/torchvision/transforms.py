"""torchvision.transforms.Normalize for tensors, as torchvision computes it: (x - mean) / std per channel."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class Normalize:
    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = mean, std

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        # (..., C, H, W): the channel axis is third from the end, as in torchvision.
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        return (tensor - mean) / std
