"""Small building blocks shared by the MTNet parts.

Notation: B batch, T frames per clip, C channels, H x W spatial size, N = H*W tokens.
"""

from __future__ import annotations

from torch import Tensor, nn


class ConvBNReLU(nn.Module):
    """conv k x k (no bias) -> BatchNorm -> ReLU. ``[*, C_in, H, W] -> [*, C_out, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class ChannelMLP(nn.Module):
    """The channel term of channel attention: one MLP of 1x1 convolutions without bias
    (``fc1``, ReLU, ``fc2``) on the average- and the max-pooled input, the two summed
    (DESIGN.md §3, §5). ``[N, C_in, h, w] -> [N, C_out, 1, 1]``, before any sigmoid."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(in_channels, hidden, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        avg = self.fc2(self.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        mx = self.fc2(self.relu(self.fc1(x.amax((2, 3), keepdim=True))))
        return avg + mx


class FFN(nn.Module):
    """Token MLP: Linear(D, 4D) -> ReLU -> Dropout -> Linear(4D, D) -> Dropout (DESIGN.md §4).

    ``[..., D] -> [..., D]``; the parameters sit at ``conv.0`` and ``conv.3`` as in the release.
    """

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)
