"""MTNet network: shapes, key names, gradients, errors (the golden check: test_golden.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model import MTNet
from model.keys import model_to_release_key
from tests.conftest import tiny_mtnet
from tests.golden_weights import read_key_list


@pytest.fixture(scope="module")
def net() -> MTNet:
    """The full network: for its keys, sizes, rates and gradients."""
    torch.manual_seed(0)
    return MTNet()


@pytest.fixture(scope="module")
def tiny() -> MTNet:
    """The test-sized network (same code): for shapes and what mixes with what."""
    return tiny_mtnet(0)


def clip(b: int, t: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, h, w, generator=g), torch.randn(b, t, 3, h, w, generator=g)


@pytest.mark.parametrize(("b", "t", "h", "w"), [(1, 3, 64, 64), (2, 2, 64, 128), (1, 1, 128, 64)])
def test_output_shapes_train_and_eval(tiny: MTNet, b: int, t: int, h: int, w: int) -> None:
    imgs, flows = clip(b, t, h, w)
    tiny.train()
    logits = tiny(imgs, flows)
    assert isinstance(logits, tuple) and len(logits) == 4
    assert all(x.shape == (b * t, 1, h, w) for x in logits)
    tiny.eval()
    with torch.no_grad():
        prob = tiny(imgs, flows)
    assert prob.shape == (b * t, 1, h, w)
    assert prob.min() >= 0 and prob.max() <= 1
    # With every submodule in eval mode, the top-level training flag only selects the
    # outputs: eval's probabilities are the sigmoid of training's main logits.
    with torch.no_grad():
        tiny.train()
        for m in tiny.modules():
            if m is not tiny:
                m.eval()
        main = tiny(imgs, flows)[0]
        tiny.eval()
    torch.testing.assert_close(torch.sigmoid(main), prob, atol=1e-5, rtol=0)


def test_eval_clips_are_independent(tiny: MTNet) -> None:
    """Batching two clips gives each clip's own output (no mixing across B)."""
    tiny.eval()
    imgs, flows = clip(2, 3, 64, 64, seed=1)
    with torch.no_grad():
        both = tiny(imgs, flows)
        first = tiny(imgs[:1], flows[:1])
        second = tiny(imgs[1:], flows[1:])
    torch.testing.assert_close(both, torch.cat([first, second]), atol=1e-5, rtol=1e-4)


def test_frames_interact_within_a_clip(tiny: MTNet) -> None:
    """Changing frame 2 of a clip changes frame 0's output (temporal mixing is live)."""
    tiny.eval()
    imgs, flows = clip(1, 3, 64, 64, seed=2)
    other = imgs.clone()
    other[0, 2] = torch.randn_like(other[0, 2])
    with torch.no_grad():
        a, b = tiny(imgs, flows), tiny(other, flows)
    assert (a[0] - b[0]).abs().max() > 1e-6


def test_state_dict_matches_release_key_list(net: MTNet) -> None:
    expected = read_key_list()
    ours = {model_to_release_key(k): tuple(v.shape) for k, v in net.state_dict().items()}
    assert len(expected) == 970
    assert ours == expected
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == 35_067_100


def test_key_list_copy_equals_shared(shared_dir: Path) -> None:
    assert read_key_list() == read_key_list(shared_dir / "spec" / "mtnet_state_dict.tsv")


def test_small_variant_has_27_blocks_in_stage_3() -> None:
    net = MTNet(encoder="convnext-small")
    keys = {model_to_release_key(k) for k in net.state_dict()}
    tiny = set(read_key_list())
    stage3 = {k.split(".")[3] for k in keys if k.startswith("backbone.stages.2.")}
    assert stage3 == {str(i) for i in range(27)}
    assert {k for k in keys if not k.startswith("backbone.stages.2.")} == {
        k for k in tiny if not k.startswith("backbone.stages.2.")
    }
    rates = [m.drop_prob for m in net.backbone.modules() if hasattr(m, "drop_prob")]
    np.testing.assert_allclose(rates, np.linspace(0, 0.3, 36)[1:], atol=1e-6)


def test_drop_path_rates_follow_linspace(net: MTNet) -> None:
    rates = [m.drop_prob for m in net.backbone.modules() if hasattr(m, "drop_prob")]
    assert len(rates) == 17  # the first of the 18 blocks has rate 0: timm uses Identity
    np.testing.assert_allclose(rates, np.linspace(0, 0.4, 18)[1:], atol=1e-6)
    gammas = [m.gamma for m in MTNet().backbone.modules() if hasattr(m, "gamma")]
    assert all(torch.all(g == 1.0) for g in gammas)


def test_unknown_encoder_and_bad_sizes_are_errors(net: MTNet) -> None:
    with pytest.raises(ValueError, match="unknown encoder 'resnet'"):
        MTNet(encoder="resnet")
    imgs, flows = clip(1, 2, 96, 64)
    with pytest.raises(ValueError, match="multiples of 64"):
        net(imgs, flows)
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        net(imgs[0], flows[0])


def test_every_parameter_gets_a_gradient(net: MTNet) -> None:
    net.train()
    net.zero_grad()
    imgs, flows = clip(1, 3, 64, 64, seed=3)
    target = (torch.rand(3, 1, 64, 64) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    logits = net(imgs, flows)
    loss = bce(logits[0], target) + 0.5 * sum(bce(x, target) for x in logits[1:])
    loss.backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


def test_decoder_layers_start_identical() -> None:
    net = MTNet()
    for stage in (net.decoder.stage1, net.decoder.stage4):
        first = stage.layers[0].state_dict()
        for layer in stage.layers[1:]:
            for k, v in layer.state_dict().items():
                assert torch.equal(v, first[k]), k
    t3 = net.transformer3
    assert not torch.equal(
        t3[0].local_attention.query_embedding.weight, t3[1].local_attention.query_embedding.weight
    )
