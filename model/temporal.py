"""Mixed temporal transformer on the stride-16 and stride-32 fused maps (DESIGN.md §4).

Notation: B clips of T frames, h x w the token grid of one frame, N = h*w, D = 96
channels, M heads of D/M channels. Tokens enter as ``[B*T, N, D]`` (row-major h, w).

Both attentions use ``scaled_dot_product_attention`` (default scale 1/sqrt(D/M)), which
computes the release's softmax(q k^T / sqrt(d)) v without materialising the weights.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import FFN


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """``[G, L, D] -> [G, M, L, D/M]``: heads are consecutive channel blocks."""
    g, n, d = x.shape
    return x.view(g, n, num_heads, d // num_heads).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """``[G, M, L, D/M] -> [G, L, D]``."""
    g, m, n, dh = x.shape
    return x.transpose(1, 2).reshape(g, n, m * dh)


class LocalAttention(nn.Module):
    """Windowed spatio-temporal attention.

    The h x w grid is split into ``zone x zone`` equal windows; per clip, window and head,
    the tokens of that window in all T frames attend to each other.
    """

    def __init__(self, dim: int, num_heads: int, zone: int) -> None:
        super().__init__()
        self.num_heads, self.zone = num_heads, zone
        self.query_embedding = nn.Linear(dim, dim)
        self.value_embedding = nn.Linear(dim, dim)
        self.key_embedding = nn.Linear(dim, dim)
        self.output_linear = nn.Linear(dim, dim)

    def _to_windows(self, x: Tensor, t: int, h: int, w: int) -> Tensor:
        """``[B*T, N, D] -> [B*z*z, T*(h/z)*(w/z), D]``."""
        bt, _, d = x.shape
        z = self.zone
        x = x.view(bt // t, t, z, h // z, z, w // z, d).permute(0, 2, 4, 1, 3, 5, 6)
        return x.reshape(bt // t * z * z, t * (h // z) * (w // z), d)

    def _from_windows(self, x: Tensor, t: int, h: int, w: int) -> Tensor:
        """Inverse of ``_to_windows``."""
        z, d = self.zone, x.shape[-1]
        x = x.view(-1, z, z, t, h // z, w // z, d).permute(0, 3, 1, 4, 2, 5, 6)
        return x.reshape(-1, h * w, d)

    def forward(self, x: Tensor, t: int, h: int, w: int) -> Tensor:
        """``[B*T, N, D] -> [B*T, N, D]``."""
        q, k, v = (
            _heads(self._to_windows(proj(x), t, h, w), self.num_heads)
            for proj in (self.query_embedding, self.key_embedding, self.value_embedding)
        )
        out = _merge_heads(F.scaled_dot_product_attention(q, k, v))
        return self.output_linear(self._from_windows(out, t, h, w))


class GlobalAttention(nn.Module):
    """Summarised attention: every token of a clip attends to a 2x-reduced map of the clip."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query_embedding = nn.Linear(dim, dim)
        self.value_embedding = nn.Linear(dim, dim)
        self.key_embedding = nn.Linear(dim, dim)
        self.output_linear = nn.Linear(dim, dim)
        self.sr = nn.Conv2d(dim, dim, kernel_size=2, stride=2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, t: int, h: int, w: int) -> Tensor:
        """``[B*T, N, D] -> [B*T, N, D]``."""
        bt, n, d = x.shape
        b = bt // t
        q = _heads(self.query_embedding(x).reshape(b, t * n, d), self.num_heads)
        reduced = self.sr(x.transpose(1, 2).reshape(bt, d, h, w)).flatten(2).transpose(1, 2)
        reduced = self.norm(reduced).reshape(b, -1, d)
        k = _heads(self.key_embedding(reduced), self.num_heads)
        v = _heads(self.value_embedding(reduced), self.num_heads)
        out = _merge_heads(F.scaled_dot_product_attention(q, k, v))
        return self.output_linear(out.reshape(bt, n, d))


class TemporalLayer(nn.Module):
    """Pre-norm layer: local attention, FFN, global attention, FFN, each residual."""

    def __init__(self, dim: int, num_heads: int, zone: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.local_attention = LocalAttention(dim, num_heads, zone)
        self.global_attention = GlobalAttention(dim, num_heads)
        self.ffn1 = FFN(dim, 4 * dim, dropout)
        self.ffn2 = FFN(dim, 4 * dim, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, t: int, h: int, w: int) -> Tensor:
        """``[B*T, N, D] -> [B*T, N, D]``."""
        x = x + self.local_attention(self.norm1(x), t, h, w)
        x = x + self.ffn1(self.norm2(x))
        x = x + self.global_attention(self.norm3(x), t, h, w)
        return x + self.ffn2(self.norm4(x))


class TemporalTransformer(nn.ModuleList):
    """A stack of ``TemporalLayer`` (keys ``transformerK.<i>.*``, no ``layers`` level)."""

    def __init__(self, dim: int, num_heads: int, zone: int, depth: int) -> None:
        super().__init__(TemporalLayer(dim, num_heads, zone) for _ in range(depth))
        self.zone = zone

    def forward(self, x: Tensor, t: int) -> Tensor:
        """``[B*T, D, h, w] -> [B*T, D, h, w]``; h and w must be multiples of ``zone * 2``."""
        bt, d, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        for layer in self:
            tokens = layer(tokens, t, h, w)
        return tokens.transpose(1, 2).reshape(bt, d, h, w)
