"""ONNX export and the onnxruntime backend: round trip with a dynamic clip length, errors."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from inference import MTNetPredictor, export_onnx
from inference.runtime import make_backend
from inference.runtime.backends import OnnxRuntimeBackend
from inference.runtime.onnx_export import exported_weights, weights_metadata
from inference.weights_args import RANDOM_WEIGHTS
from model import MTNet
from model.weights import save_model_file
from tests.conftest import load_script
from tests.synthetic_videos import make_dataset
from util.errors import InputError
from util.image import read_grey

H, W = 64, 128  # not square, so that a swapped H and W would show


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[MTNet, Path, Path]:
    """A random MTNet, its weights file and its ONNX export written by the command.

    One export (~1 min) serves every test of the module.
    """
    folder = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(3)
    net = MTNet().eval()
    weights = folder / "weights.pth"
    save_model_file(weights, net)
    out = folder / "mtnet.onnx"
    argv = ["--test_model", str(weights), "--test_size", str(H), str(W), "--out", str(out)]
    assert export_onnx.main([*argv, "--no_optimize"]) == 0
    return net, weights, out


def clip(t: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, t, 3, H, W, generator=g), torch.randn(1, t, 3, H, W, generator=g)


@pytest.mark.slow  # the full network exported
def test_onnx_matches_pytorch_for_two_clip_lengths(exported) -> None:
    import onnxruntime as ort

    net, _, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape[1] for i in session.get_inputs()] == ["T", "T"]
    for t in (2, 3):
        imgs, flows = clip(t, seed=t)
        with torch.inference_mode():
            ref = net(imgs, flows).numpy()
        (prob,) = session.run(["prob"], {"imgs": imgs.numpy(), "flows": flows.numpy()})
        assert prob.shape == (t, 1, H, W)
        assert np.abs(prob - ref).max() <= 1e-4


@pytest.mark.slow  # the full network exported
def test_onnx_metadata_names_the_weights(exported) -> None:
    _, weights, path = exported
    backend = OnnxRuntimeBackend(path)
    meta = backend.describe()["onnx_metadata"]
    assert meta["mtnet.test_size"] == f"{H}x{W}"
    assert meta["mtnet.encoder_name"] == "convnext-tiny"
    assert meta["mtnet.weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


@pytest.mark.slow  # the full network exported
def test_onnxruntime_backend_matches_torch_backend(exported) -> None:
    net, _, path = exported
    ort_backend = make_backend(None, runtime="onnxruntime", onnx_path=path)
    torch_backend = make_backend(net)
    imgs, flows = clip(1, seed=7)  # a short last clip of a video
    out = ort_backend(imgs, flows)
    assert out.dtype == torch.float32 and out.shape == (1, 1, H, W)
    assert (out - torch_backend(imgs, flows)).abs().max() <= 1e-4
    info = ort_backend.describe()
    assert (info["precision"], info["runtime"], info["device"]) == ("fp32", "onnxruntime", "cpu")


@pytest.mark.slow  # the full network exported
def test_onnxruntime_backend_refuses_another_size(exported) -> None:
    _, _, path = exported
    backend = OnnxRuntimeBackend(path)
    imgs, flows = torch.zeros(1, 2, 3, W, H), torch.zeros(1, 2, 3, W, H)
    with pytest.raises(InputError) as err:
        backend(imgs, flows)
    assert str(err.value) == (
        f"{path}: exported for {H}x{W} inputs, got {W}x{H}; export again with --test_size {W} {H}"
    )


def test_onnxruntime_backend_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no such ONNX file"):
        OnnxRuntimeBackend(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match=r"junk.onnx: not a loadable ONNX model \(") as err:
        OnnxRuntimeBackend(junk)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "export_onnx: error: --test_model: give the weights file to export"),
        (
            ["--random_weights", "--test_size", "96", "128"],
            "export_onnx: error: --test_size 96 128: expected multiples of 64",
        ),
        (["--test_model", "absent.pth"], "export_onnx: error: absent.pth: no such weights file"),
    ],
)
def test_export_command_errors_are_one_line(capsys, argv: list[str], message: str) -> None:
    assert export_onnx.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.slow  # the full network exported
def test_test_py_with_onnxruntime_gives_the_torch_masks(exported, tmp_path) -> None:
    """test.py --runtime onnxruntime --onnx FILE against test.py in fp32 PyTorch: the VSOD
    maps agree to one grey level (1e-4 in probability), and the run says what it was."""
    _, weights, path = exported
    data = make_dataset(tmp_path / "SYN")
    script = load_script("test.py")
    base = ["--test_model", str(weights), "--test_dataset", str(data), "--task_name", "VSOD"]
    base += ["--device", "cpu", "--num_workers", "0", "--test_length", "3"]
    base += ["--test_size", str(H), str(W)]
    assert script.main([*base, "--output_dir", str(tmp_path / "pt")]) == 0
    args = [*base, "--output_dir", str(tmp_path / "ort"), "--runtime", "onnxruntime"]
    assert script.main([*args, "--onnx", str(path)]) == 0
    for ours in sorted((tmp_path / "ort").rglob("*.png")):
        reference = tmp_path / "pt" / ours.relative_to(tmp_path / "ort")
        diff = np.abs(read_grey(ours).astype(int) - read_grey(reference).astype(int))
        assert diff.max() <= 1, ours
    config = json.loads((tmp_path / "ort" / "MTNet" / "VSOD" / "test_config.json").read_text())
    made_by = config["provenance"]
    assert (made_by["runtime"], made_by["precision"], made_by["device"]) == (
        "onnxruntime",
        "fp32",
        "cpu",
    )
    assert made_by["weights"] == hashlib.sha256(weights.read_bytes()).hexdigest()


@pytest.mark.slow  # the full network exported
def test_an_export_of_another_size_is_refused(exported, tmp_path) -> None:
    _, _, path = exported
    with pytest.raises(
        InputError, match=re.escape(f"made for {H}x{W} inputs, not test_size=(64, 64)")
    ):
        MTNetPredictor(None, test_size=(64, 64), runtime="onnxruntime", onnx_path=path)


@pytest.mark.slow  # the full network exported
def test_test_py_refuses_an_export_of_other_weights(exported, tiny_weights, tmp_path, capsys):
    """The record names --test_model's weights: an --onnx file exported from others would
    make it lie, so the run stops before any mask."""
    _, weights, path = exported
    data = make_dataset(tmp_path / "SYN")
    args = ["--test_model", str(tiny_weights), "--test_dataset", str(data), "--device", "cpu"]
    args += ["--test_size", str(H), str(W), "--output_dir", str(tmp_path / "out")]
    assert (
        load_script("test.py").main([*args, "--runtime", "onnxruntime", "--onnx", str(path)]) == 2
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    tiny_sha = hashlib.sha256(tiny_weights.read_bytes()).hexdigest()
    assert line == (
        f"test.py: error: {path}: exported from weights {sha}, not {tiny_sha} (--test_model); "
        "export these weights again with python -m inference.export_onnx, or give the "
        "--test_model it was exported from"
    )
    assert not list((tmp_path / "out").rglob("*.png"))


def test_weights_metadata_round_trip() -> None:
    named = weights_metadata("w.pth", "ab" * 32, "convnext-tiny")
    assert named == {
        "mtnet.weights": "w.pth",
        "mtnet.weights_sha256": "ab" * 32,
        "mtnet.encoder_name": "convnext-tiny",
    }
    assert exported_weights(named) == "ab" * 32
    untrained = weights_metadata(None, RANDOM_WEIGHTS, "convnext-tiny")
    assert exported_weights(untrained) == RANDOM_WEIGHTS == "random (seed 0)"
    assert exported_weights({"mtnet.test_size": "64x128"}) is None
