"""Building blocks against plain reference computations written from DESIGN.md §2-§5."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model.decoder import DecoderLayer
from model.encoder import Encoder
from model.fusion import Fusion
from model.temporal import GlobalAttention, LocalAttention

torch.manual_seed(0)


def randomize_(module: torch.nn.Module) -> torch.nn.Module:
    """Random weights and BN statistics so every term matters; eval mode."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand_like(t))
            else:
                t.copy_(0.3 * torch.randn_like(t))
    return module.eval()


def test_channels_first_layernorm_matches_formula() -> None:
    norm = randomize_(Encoder(depths=(1, 1, 1, 1), drop_path_rate=0.0)).norm1
    x = torch.randn(2, 192, 5, 7)
    u = x.mean(1, keepdim=True)
    s = ((x - u) ** 2).mean(1, keepdim=True)  # biased variance
    ref = (x - u) / torch.sqrt(s + 1e-6) * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), ref, atol=1e-5, rtol=1e-5)


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for one head, ``[Lq, d], [Lk, d] -> [Lq, d]``."""
    return torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1) @ v


def test_local_attention_matches_per_window_loop() -> None:
    b, t, h, w, d, heads, zone = 2, 3, 4, 6, 8, 2, 2
    attn = randomize_(LocalAttention(d, heads, zone))
    x = torch.randn(b * t, h * w, d)
    q, k, v = attn.query_embedding(x), attn.key_embedding(x), attn.value_embedding(x)
    out = torch.zeros_like(x)
    dh, wh, ww = d // heads, h // zone, w // zone
    for clip in range(b):
        frames = range(clip * t, (clip + 1) * t)
        for zi in range(zone):
            for zj in range(zone):
                # the window's tokens in every frame of the clip: (frame, token index) pairs
                members = [
                    (f, r * w + c)
                    for f in frames
                    for r in range(zi * wh, (zi + 1) * wh)
                    for c in range(zj * ww, (zj + 1) * ww)
                ]
                for m in range(heads):
                    ch = slice(m * dh, (m + 1) * dh)
                    qw = torch.stack([q[f, n, ch] for f, n in members])
                    kw = torch.stack([k[f, n, ch] for f, n in members])
                    vw = torch.stack([v[f, n, ch] for f, n in members])
                    res = naive_attention(qw, kw, vw)
                    for row, (f, n) in enumerate(members):
                        out[f, n, ch] = res[row]
    ref = attn.output_linear(out)
    torch.testing.assert_close(attn(x, t, h, w), ref, atol=1e-5, rtol=1e-5)


def test_global_attention_matches_per_clip_loop() -> None:
    b, t, h, w, d, heads = 2, 3, 4, 6, 8, 2
    attn = randomize_(GlobalAttention(d, heads))
    x = torch.randn(b * t, h * w, d)
    dh = d // heads
    out = torch.zeros_like(x)
    for clip in range(b):
        frames = list(range(clip * t, (clip + 1) * t))
        queries = torch.cat([attn.query_embedding(x[f]) for f in frames])  # [T*N, D]
        reduced = []
        for f in frames:
            fmap = x[f].T.reshape(1, d, h, w)  # token n = row * w + col
            red = F.conv2d(fmap, attn.sr.weight, attn.sr.bias, stride=2)
            tokens = red.flatten(2)[0].T  # [h/2 * w/2, D]
            mu = tokens.mean(-1, keepdim=True)
            var = tokens.var(-1, unbiased=False, keepdim=True)
            reduced.append(
                (tokens - mu) / torch.sqrt(var + 1e-5) * attn.norm.weight + attn.norm.bias
            )
        reduced = torch.cat(reduced)  # every reduced token of the clip
        keys, values = attn.key_embedding(reduced), attn.value_embedding(reduced)
        res = torch.cat(
            [
                naive_attention(
                    queries[:, m * dh : (m + 1) * dh],
                    keys[:, m * dh : (m + 1) * dh],
                    values[:, m * dh : (m + 1) * dh],
                )
                for m in range(heads)
            ],
            dim=1,
        )
        out[frames] = res.reshape(t, h * w, d)
    ref = attn.output_linear(out)
    torch.testing.assert_close(attn(x, t, h, w), ref, atol=1e-5, rtol=1e-5)


def bn_eval(x: torch.Tensor, bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean[:, None, None]) * scale[:, None, None] + bn.bias[:, None, None]


def test_fusion_gate_and_coattention_match_formulas() -> None:
    c_in, d = 12, 8
    fusion = randomize_(Fusion(c_in, d))
    r_in, f_in = torch.randn(2, c_in, 5, 6), torch.randn(2, c_in, 5, 6)

    def down(x: torch.Tensor, block: torch.nn.Module) -> torch.Tensor:
        return torch.relu(bn_eval(F.conv2d(x, block.conv.weight, padding=1), block.bn))

    r, f = down(r_in, fusion.r_down[0]), down(f_in, fusion.f_down[0])
    gc = fusion.gate_conv
    hidden = down(torch.cat([r, f], 1), gc[0])
    gate = torch.sigmoid(F.conv2d(hidden, gc[1].weight, gc[1].bias, padding=1))
    g = gate.mean(dim=(2, 3))  # global average pool -> [N, 2]
    r = r * g[:, 0, None, None, None]
    f = f * g[:, 1, None, None, None]
    ch, sp = fusion.attn_fusion.channel, fusion.attn_fusion.spatial
    cat = torch.cat([r, f], 1)

    def mlp(v: torch.Tensor) -> torch.Tensor:  # [N, 2D] -> [N, D]
        return torch.relu(v @ ch.fc1.weight[:, :, 0, 0].T) @ ch.fc2.weight[:, :, 0, 0].T

    ca = mlp(cat.mean(dim=(2, 3))) + mlp(cat.flatten(2).max(dim=2).values)
    stats = torch.stack(
        [r.mean(1), r.max(1).values, f.mean(1), f.max(1).values], dim=1
    )  # [N, 4, h, w]
    pa = F.conv2d(stats, sp.conv1.weight, padding=3)  # [N, 1, h, w]
    a = torch.sigmoid(ca[:, :, None, None] + pa)
    ref = (r * a + r) + (f * (1 - a) + f)
    torch.testing.assert_close(fusion(r_in, f_in), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("takes_last", [False, True])
def test_decoder_layer_matches_formula(takes_last: bool) -> None:
    d = 32
    layer = randomize_(DecoderLayer(d, takes_last=takes_last))
    x0 = torch.randn(2, d, 6, 8)
    last = torch.randn(2, d, 3, 4) if takes_last else None
    att = layer.attention

    def dw_bn_relu(v: torch.Tensor, seq: torch.nn.Sequential) -> torch.Tensor:
        conv = F.conv2d(v, seq[0].weight, seq[0].bias, padding=3, groups=d)
        return torch.relu(bn_eval(conv, seq[1]))

    e = dw_bn_relu(x0, att.early_stage)
    fc1, fc2 = att.early_ca.fc1.weight[:, :, 0, 0], att.early_ca.fc2.weight[:, :, 0, 0]
    ca = torch.sigmoid(
        torch.relu(e.mean((2, 3)) @ fc1.T) @ fc2.T + torch.relu(e.amax((2, 3)) @ fc1.T) @ fc2.T
    )
    e = e * ca[:, :, None, None]
    if takes_last:
        up = F.interpolate(last, size=(6, 8), mode="bilinear", align_corners=True)
        e = dw_bn_relu(e + up, att.late_stage)
    x = x0 + e
    tok = x.permute(0, 2, 3, 1)
    normed = F.layer_norm(tok, (d,), layer.norm2.weight, layer.norm2.bias, 1e-5)
    ffn = layer.ffn.conv
    hidden = torch.relu(normed @ ffn[0].weight.T + ffn[0].bias)
    ref = (tok + hidden @ ffn[3].weight.T + ffn[3].bias).permute(0, 3, 1, 2)
    torch.testing.assert_close(layer(x0, last), ref, atol=1e-5, rtol=1e-5)
