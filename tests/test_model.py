"""MTNet network: shapes, key names, the golden release output, gradients, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model import MTNet
from model.keys import model_to_release_key
from model.weights import load_weights

KEY_LIST = Path(__file__).parent / "data" / "mtnet_state_dict.tsv"


def read_key_list(path: Path = KEY_LIST) -> dict[str, tuple[int, ...]]:
    rows = {}
    for line in path.read_text().splitlines()[1:]:
        key, shape, _ = line.split("\t")
        rows[key] = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
    return rows


@pytest.fixture(scope="module")
def tiny_net() -> MTNet:
    torch.manual_seed(0)
    return MTNet()


def clip(b: int, t: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, h, w, generator=g), torch.randn(b, t, 3, h, w, generator=g)


@pytest.mark.parametrize(("b", "t", "h", "w"), [(1, 3, 64, 64), (2, 2, 64, 128), (1, 1, 128, 64)])
def test_output_shapes_train_and_eval(tiny_net: MTNet, b: int, t: int, h: int, w: int) -> None:
    imgs, flows = clip(b, t, h, w)
    tiny_net.train()
    logits = tiny_net(imgs, flows)
    assert isinstance(logits, tuple) and len(logits) == 4
    assert all(x.shape == (b * t, 1, h, w) for x in logits)
    tiny_net.eval()
    with torch.no_grad():
        prob = tiny_net(imgs, flows)
    assert prob.shape == (b * t, 1, h, w)
    assert prob.min() >= 0 and prob.max() <= 1
    # With every submodule in eval mode, the top-level training flag only selects the
    # outputs: eval's probabilities are the sigmoid of training's main logits.
    with torch.no_grad():
        tiny_net.train()
        for m in tiny_net.modules():
            if m is not tiny_net:
                m.eval()
        main = tiny_net(imgs, flows)[0]
        tiny_net.eval()
    torch.testing.assert_close(torch.sigmoid(main), prob, atol=1e-5, rtol=0)


def test_eval_clips_are_independent(tiny_net: MTNet) -> None:
    """Batching two clips gives each clip's own output (no mixing across B)."""
    tiny_net.eval()
    imgs, flows = clip(2, 3, 64, 64, seed=1)
    with torch.no_grad():
        both = tiny_net(imgs, flows)
        first = tiny_net(imgs[:1], flows[:1])
        second = tiny_net(imgs[1:], flows[1:])
    torch.testing.assert_close(both, torch.cat([first, second]), atol=1e-5, rtol=1e-4)


def test_frames_interact_within_a_clip(tiny_net: MTNet) -> None:
    """Changing frame 2 of a clip changes frame 0's output (temporal mixing is live)."""
    tiny_net.eval()
    imgs, flows = clip(1, 3, 64, 64, seed=2)
    other = imgs.clone()
    other[0, 2] = torch.randn_like(other[0, 2])
    with torch.no_grad():
        a, b = tiny_net(imgs, flows), tiny_net(other, flows)
    assert (a[0] - b[0]).abs().max() > 1e-6


def test_state_dict_matches_release_key_list(tiny_net: MTNet) -> None:
    expected = read_key_list()
    ours = {model_to_release_key(k): tuple(v.shape) for k, v in tiny_net.state_dict().items()}
    assert len(expected) == 970
    assert ours == expected
    n_params = sum(p.numel() for p in tiny_net.parameters())
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


def test_drop_path_rates_follow_linspace(tiny_net: MTNet) -> None:
    rates = [m.drop_prob for m in tiny_net.backbone.modules() if hasattr(m, "drop_prob")]
    assert len(rates) == 17  # the first of the 18 blocks has rate 0: timm uses Identity
    np.testing.assert_allclose(rates, np.linspace(0, 0.4, 18)[1:], atol=1e-6)
    gammas = [m.gamma for m in MTNet().backbone.modules() if hasattr(m, "gamma")]
    assert all(torch.all(g == 1.0) for g in gammas)


def test_unknown_encoder_and_bad_sizes_are_errors(tiny_net: MTNet) -> None:
    with pytest.raises(ValueError, match="unknown encoder 'resnet'"):
        MTNet(encoder="resnet")
    imgs, flows = clip(1, 2, 96, 64)
    with pytest.raises(ValueError, match="multiples of 64"):
        tiny_net(imgs, flows)
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        tiny_net(imgs[0], flows[0])


def test_every_parameter_gets_a_gradient(tiny_net: MTNet) -> None:
    tiny_net.train()
    tiny_net.zero_grad()
    imgs, flows = clip(1, 3, 64, 64, seed=3)
    target = (torch.rand(3, 1, 64, 64) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    logits = tiny_net(imgs, flows)
    loss = bce(logits[0], target) + 0.5 * sum(bce(x, target) for x in logits[1:])
    loss.backward()
    dead = [n for n, p in tiny_net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
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


def test_golden_release_output(shared_dir: Path, tmp_path: Path) -> None:
    """The release's eval output for the deterministic golden weights, to 1e-4."""
    golden = shared_dir / "golden"
    sys.path.insert(0, str(golden))
    try:
        import weights as golden_weights
    finally:
        sys.path.remove(str(golden))
    state = golden_weights.state_dict(golden_weights.read_tsv(KEY_LIST))
    path = tmp_path / "golden.pth"
    torch.save({"it": 0, "network": {"module." + k: v for k, v in state.items()}}, path)
    net = MTNet().eval()
    assert load_weights(net, path) == 0
    imgs, flows = golden_weights.golden_input()
    captured = {}
    net.fusion4.register_forward_hook(lambda m, i, o: captured.__setitem__("fusion4", o))
    with torch.no_grad():
        prob = net(imgs, flows)
    ref = np.load(golden / "mtnet_eval_512.npz")
    np.testing.assert_allclose(captured["fusion4"].numpy(), ref["fusion4"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(prob.numpy(), ref["prob"], atol=1e-4, rtol=0)
