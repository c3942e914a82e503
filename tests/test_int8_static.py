"""Static int8: calibration files, the quantised network, Inductor's compile of a quantised
graph, and test.py's int8_static.

The network is the untrained MTNet at 64x64 with clips of 3 frames where the quantised
numbers are compared; a small two-input module where Inductor compiles a quantised graph
(the same passes, a few kernels instead of MTNet's hundreds); the test-sized network where
test.py runs int8_static end to end, its compile recorded rather than run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from inference.runtime import make_backend
from inference.runtime.compile import FrozenCompiled
from inference.runtime.int8_static import (
    Calibration,
    _observed,
    calibrate,
    load_calibration,
    quantize_static,
    save_calibration,
)
from model import MTNet
from model.weights import save_model_file
from tests.conftest import load_script, tiny_mtnet
from tests.synthetic_videos import make_dataset
from util.errors import InputError

SIZE = (64, 64)


@pytest.fixture(scope="module")
def net() -> MTNet:
    torch.manual_seed(0)
    return MTNet().eval()


@pytest.fixture(scope="module", autouse=True)
def export_net_once(net: MTNet) -> Iterator[None]:
    """The module's tests quantise ``net`` at one size several times; each quantisation
    exports it with the same example and options, which gives the same program, and the
    export of the full network is most of their time: it is exported once here, and every
    later quantisation unlifts its own graph from that program (``program.module()``)."""
    real, programs = torch.export.export, {}

    def export(model: nn.Module, args: tuple, **kwargs) -> torch.export.ExportedProgram:
        if model is not net:
            return real(model, args, **kwargs)
        key = tuple(tuple(a.shape) for a in args)
        if key not in programs:
            programs[key] = real(model, args, **kwargs)
        return programs[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.export, "export", export)
        yield


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (
            f"clip{i}",
            torch.randn(1, 3, 3, *SIZE, generator=g),
            torch.randn(1, 3, 3, *SIZE, generator=g),
        )
        for i in range(2)
    ]


@pytest.fixture(scope="module")
def saved(net, clips, tmp_path_factory) -> Calibration:
    calibration = calibrate(net, clips, SIZE, "test weights")
    return save_calibration(tmp_path_factory.mktemp("int8") / "calibration.pth", calibration)


def test_calibration_file_round_trip(saved: Calibration) -> None:
    loaded = load_calibration(saved.path)
    assert loaded.ranges.keys() == saved.ranges.keys() and len(loaded.ranges) > 0
    assert all(torch.equal(loaded.ranges[k], v) for k, v in saved.ranges.items())
    assert (loaded.size, loaded.weights, loaded.clips) == (SIZE, "test weights", ("clip0", "clip1"))
    assert loaded.sha256 == saved.sha256 == hashlib.sha256(saved.path.read_bytes()).hexdigest()


def test_saved_ranges_quantise_as_the_calibrated_observers_do(net, clips, saved) -> None:
    """The file carries everything the conversion reads (the activations' histograms too):
    a network quantised from it equals one converted from the calibrated observers."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    observed = _observed(net, SIZE)
    with torch.no_grad():
        for _, imgs, flows in clips:
            observed(imgs, flows)
    direct = convert_pt2e(observed)
    from_file = quantize_static(net, load_calibration(saved.path))
    imgs, flows = clips[0][1], clips[0][2]
    with torch.inference_mode():
        expected, out = direct(imgs, flows), from_file(imgs, flows)
        reference = net(imgs, flows)
        short = from_file(imgs[:, :1], flows[:, :1])  # a shorter last clip, same graph
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    diff = (out - reference).abs()
    assert 0 < diff.mean() < 1e-2  # quantised, and close to fp32
    assert short.shape == (1, 1, *SIZE)


def test_ranges_that_do_not_fit_are_one_line(saved) -> None:
    """The full network's ranges given to the test-sized network (another variant): its
    graph has other quantised inputs."""
    with pytest.raises(InputError, match=r"^cal.pth: its \d+ ranges do not fit .* variant") as err:
        quantize_static(tiny_mtnet(0), Calibration(**{**vars(saved), "path": Path("cal.pth")}))
    assert "\n" not in str(err.value)


class _TwoInputs(nn.Module):
    """``imgs, flows: [1, T, 3, H, W] -> [T, 1, H, W]`` through two Linear layers per
    pixel: what int8_static quantises, in a graph that compiles in seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.mix, self.out = nn.Linear(6, 32), nn.Linear(32, 1)

    def forward(self, imgs: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
        x = torch.cat([imgs, flows], dim=2)[0].permute(0, 2, 3, 1)  # [T, H, W, 6]
        return torch.sigmoid(self.out(nn.functional.gelu(self.mix(x)))).permute(0, 3, 1, 2)


def test_inductor_compiles_a_quantised_graph_and_agrees(clips) -> None:
    """Inductor with freezing lowers the quantised Linear layers (oneDNN int8 kernels); the
    compiled graph gives the uncompiled quantised one's numbers, close to fp32's.

    The uncompiled graph computes in fp32 on dequantised values and oneDNN's kernels in
    int32 with a fused GELU, so a hidden activation at a rounding boundary may be quantised
    one step apart (how often depends on the CPU's int8 instructions): rare, and each such
    step moves the output by at most (hidden step) x max|out weight| x 1/4 (sigmoid's
    steepest slope)."""
    from torch._inductor.utils import run_and_get_code

    torch.manual_seed(0)
    toy = _TwoInputs().eval()
    quantised = quantize_static(toy, calibrate(toy, clips, SIZE, "toy"))
    imgs, flows = clips[1][1], clips[1][2]
    with torch.inference_mode():
        reference, eager = toy(imgs, flows), quantised(imgs, flows)
        compiled, code = run_and_get_code(FrozenCompiled(quantised), imgs, flows)
    assert "torch.ops.onednn.qlinear_pointwise" in "\n".join(code)  # int8 kernels, not fp32
    assert compiled.shape == (3, 1, *SIZE)
    quantise = torch.ops.quantized_decomposed.quantize_per_tensor.default
    steps = [n.args[1] for n in quantised.graph.nodes if n.target == quantise]
    assert len(steps) == 2  # the input and the hidden activation
    one_step = steps[1] * toy.out.weight.abs().max().item() / 4
    diff = (compiled - eager).abs()
    assert diff.max() <= one_step * 1.01
    assert (diff > 1e-5).float().mean() <= 1e-3
    assert 0 < (compiled - reference).abs().mean() < 1e-2  # quantised, and close to fp32


def test_calibration_files_that_cannot_be_read(tiny_weights: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such int8 calibration file"):
        load_calibration(tmp_path / "missing.pth")
    with pytest.raises(InputError, match="not an int8 calibration file"):
        load_calibration(tiny_weights)  # a model file
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a readable int8 calibration file"):
        load_calibration(junk)


def test_backend_needs_the_calibration_and_compile(net, saved) -> None:
    with pytest.raises(
        InputError,
        match=r"^precision='int8_static' runs compiled, without channels_last: add compile=True",
    ):
        make_backend(net, "int8_static", calibration=saved)
    with pytest.raises(InputError, match=r"^precision='int8_static' needs int8_calibration FILE"):
        make_backend(net, "int8_static", compile=True, compile_length=3)
    with pytest.raises(InputError, match=r"^precision='int8_static': int8 quantisation runs on"):
        make_backend(
            net, "int8_static", "torch", "cuda", compile=True, compile_length=3, calibration=saved
        )
    with pytest.raises(
        InputError, match=r"^int8_calibration: used by precision='int8_static' only"
    ):
        make_backend(net, "int8", calibration=saved)


def _test_py(model: Path, data: Path, out: Path, *extra: str) -> int:
    args = [
        "--test_model", str(model), "--test_dataset", str(data), "--output_dir", str(out),
        "--device", "cpu", "--num_workers", "1", "--test_length", "3", "--test_size", "64",
        "64", *extra,
    ]  # fmt: skip
    return load_script("test.py").main(args)


def test_test_py_int8_static_end_to_end(
    tiny_weights: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Calibrate with the module command, then test.py quantises the network with the file
    and compiles it for the clip length (recorded here; the compile itself is tested
    above): masks written, the calibration in the provenance, and the wrong file refused."""
    from inference import int8_static

    compiled: list[dict] = []

    def record_compile(model: nn.Module, **kwargs) -> nn.Module:
        compiled.append({"graph": type(model).__name__, **kwargs})
        return model

    monkeypatch.setattr(torch, "compile", record_compile)
    model = tiny_weights
    data = make_dataset(tmp_path / "data" / "SYN")
    cal = tmp_path / "cal.pth"
    common = ["--test_model", str(model), "--root", str(tmp_path), "--test_dataset", str(data)]
    common += ["--test_size", "64", "64", "--test_length", "3"]
    assert int8_static.main([*common, "--num_videos", "2", "--out", str(cal)]) == 0
    assert load_calibration(cal).clips == ("SYN/a/00000", "SYN/b/00000")

    mode = ["--precision", "int8_static", "--int8_calibration", str(cal), "--compile"]
    assert _test_py(model, data, tmp_path / "out", *mode) == 0
    assert compiled == [{"graph": "GraphModule", "dynamic": False}]  # the quantised graph
    written = sorted(p.name for p in (tmp_path / "out" / "MTNet" / "UVOS" / "SYN").glob("*/*.png"))
    assert len(written) == 8
    config = json.loads((tmp_path / "out" / "MTNet" / "UVOS" / "test_config.json").read_text())
    assert config["provenance"]["int8_calibration"] == load_calibration(cal).sha256
    assert (config["provenance"]["compile"], config["provenance"]["compile_length"]) == (True, 3)

    other = tmp_path / "other.pth"
    save_model_file(other, tiny_mtnet(1))
    capsys.readouterr()
    assert _test_py(other, data, tmp_path / "out2", *mode) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "calibrated for weights" in err[0]
    assert _test_py(model, data, tmp_path / "out3", "--precision", "int8_static", "--compile") == 2
    assert "needs --int8_calibration" in capsys.readouterr().err
