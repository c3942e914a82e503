"""The CUDA paths: fp32 (TF32 off) against the release's output, tf32, bf16 and fp16
autocast, the compiled network, and test.py on a GPU against the CPU.

Skipped without a CUDA device (CI has none); run on a GPU machine with
``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from inference.runtime import make_backend
from inference.runtime.compile import FrozenCompiled
from model import MTNet
from model.weights import load_weights, save_model_file
from tests.conftest import load_script
from tests.golden_weights import GOLDEN_ARRAYS, golden_input, save_golden_weights
from tests.synthetic_videos import make_dataset

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def golden_net(tmp_path_factory) -> MTNet:
    path = tmp_path_factory.mktemp("golden") / "golden.pth"
    save_golden_weights(path)
    net = MTNet().eval()
    assert load_weights(net, path) == 0
    return net.to(CUDA)


@pytest.fixture(scope="module")
def golden_fp32(golden_net: MTNet) -> torch.Tensor:
    return make_backend(golden_net, "fp32")(*golden_input()).cpu()


def _tf32_switches() -> list[bool]:
    return [torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32]


def test_fp32_on_cuda_gives_the_release_output(golden_fp32: torch.Tensor) -> None:
    """fp32 on a GPU (TF32 off) matches the release's fp32 output to 1e-4, as on the CPU."""
    ref = torch.from_numpy(np.load(GOLDEN_ARRAYS)["prob"])
    err = (golden_fp32 - ref).abs().max().item()
    print(f"fp32 on {torch.cuda.get_device_name()}: max |d| {err:.2e} from the release's output")
    assert golden_fp32.shape == ref.shape == (3, 1, 512, 512)
    assert err <= 1e-4


@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 0),
    reason="TF32 needs an Ampere or newer GPU",
)
def test_tf32_differs_from_fp32_and_leaves_the_switches_as_they_were(
    golden_net: MTNet, golden_fp32: torch.Tensor
) -> None:
    before = _tf32_switches()
    prob = make_backend(golden_net, "tf32")(*golden_input()).cpu()
    assert _tf32_switches() == before
    err = (prob - golden_fp32).abs().max().item()
    print(f"tf32: max |d| {err:.2e} from fp32")
    assert 1e-3 < err < 5e-2  # TF32 convolutions really on (10-bit mantissa), still close


# Bounds on the mean |d| from fp32 on the golden clip, set from what autocast gives on the
# CPU for the same (random) weights: bf16 0.0226, fp16 0.0024
@pytest.mark.parametrize(("precision", "bound"), [("bf16", 4e-2), ("fp16", 8e-3)])
def test_autocast_on_cuda_is_close_to_fp32(
    golden_net: MTNet, golden_fp32: torch.Tensor, precision: str, bound: float
) -> None:
    prob = make_backend(golden_net, precision)(*golden_input())
    assert prob.dtype == torch.float32 and prob.device.type == "cuda"
    diff = (prob.cpu() - golden_fp32).abs()
    print(f"{precision}: mean |d| {diff.mean():.2e}, max {diff.max():.2e} from fp32")
    assert torch.isfinite(prob).all()
    assert 0 < diff.mean() < bound  # autocast on, and not broken


def test_compiled_network_on_cuda_freezes_the_weights_and_agrees() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.GELU())
    net = net.eval().to(CUDA)
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 16, 16, device=CUDA)
    compiled = FrozenCompiled(net)
    with torch.inference_mode():
        expected, out = net(x), compiled(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        net[0].weight.mul_(2)
    with torch.inference_mode():
        assert not torch.allclose(net(x), expected)
        torch.testing.assert_close(compiled(x), out, atol=0, rtol=0)


def test_compiled_fp32_mtnet_on_cuda_agrees_with_eager(golden_net: MTNet) -> None:
    """fp32 compiled with freezing, TF32 off inside the compiled call too."""
    imgs, flows = golden_input(64)
    eager = make_backend(golden_net, "fp32")(imgs, flows)
    out = make_backend(golden_net, "fp32", compile=True, compile_length=3)(imgs, flows)
    err = (out - eager).abs().max().item()
    print(f"fp32 compiled vs eager at 64x64: max |d| {err:.2e}")
    assert err <= 1e-4


def test_compiled_mtnet_on_cuda_agrees_with_eager(golden_net: MTNet) -> None:
    imgs, flows = golden_input(64)
    eager = make_backend(golden_net, "bf16")(imgs, flows)
    compiled = make_backend(golden_net, "bf16", compile=True, compile_length=3)
    out = compiled(imgs, flows)
    assert compiled.compiled is not None
    diff = (out - eager).abs()
    print(f"bf16 compiled vs eager at 64x64: mean |d| {diff.mean():.2e}, max {diff.max():.2e}")
    assert diff.mean() < 1e-2


def _run_test_py(model: Path, data: Path, out: Path, *extra: str) -> Path:
    args = [
        "--test_model", str(model), "--test_dataset", str(data), "--output_dir", str(out),
        "--num_workers", "1", "--test_length", "3", "--test_size", "64", "64", *extra,
    ]  # fmt: skip
    assert load_script("test.py").main(args) == 0
    return out / "MTNet" / "UVOS" / data.name


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {
        str(p.relative_to(folder)): np.asarray(Image.open(p))
        for p in sorted(folder.glob("*/*.png"))
    }


def test_test_py_on_cuda_writes_the_cpu_masks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = tmp_path / "random.pth"
    save_model_file(model, MTNet())
    data = make_dataset(tmp_path / "data" / "SYN")
    cpu = _masks(_run_test_py(model, data, tmp_path / "cpu", "--device", "cpu"))
    gpu_dir = _run_test_py(model, data, tmp_path / "gpu", "--device", "cuda")
    gpu = _masks(gpu_dir)
    assert gpu.keys() == cpu.keys() and len(cpu) == 8  # 5 + 3 frames
    differing = sum(int((gpu[k] != cpu[k]).sum()) for k in cpu)
    total = sum(m.size for m in cpu.values())
    print(f"test.py fp32 on cuda vs cpu: {differing} of {total} mask pixels differ")
    assert differing <= total * 1e-3
    config = json.loads((tmp_path / "gpu" / "MTNet" / "UVOS" / "test_config.json").read_text())
    text = json.dumps(config)
    assert "cuda" in text and torch.cuda.get_device_name() in text
    assert config["provenance"]["precision"] == "fp32"
    assert config["provenance"]["cudnn_tf32"] is False
    for extra, mode in (
        (["--amp"], "bf16"),
        (["--precision", "fp16"], "fp16"),
        (["--precision", "tf32"], "tf32"),
    ):
        out = tmp_path / mode
        masks = _masks(_run_test_py(model, data, out, "--device", "cuda", *extra))
        assert masks.keys() == cpu.keys()
        config = json.loads((out / "MTNet" / "UVOS" / "test_config.json").read_text())
        assert config["provenance"]["precision"] == mode
