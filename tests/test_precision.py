"""Precisions and torch backends: CPU flags, int8 copies, bf16 autocast, one-line errors."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys

import pytest
import torch
from torch import nn

import inference.runtime.backends as backend_module
import inference.runtime.precision as precision
import util.cpu as cpu
from inference.runtime import describe_line, make_backend
from inference.runtime.backends import TorchBackend
from inference.runtime.compile import FrozenCompiled
from inference.runtime.int8_dynamic import quantize_int8
from model import MTNet
from tests.conftest import REPO, tiny_mtnet
from util.amp import autocast
from util.errors import InputError

CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R)   Platinum 8480+
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Other CPU
flags\t\t: fpu sse2
"""
AVX2_ONLY = "model name\t: AMD Ryzen 7 3700X\nflags\t\t: fpu sse2 avx avx2 fma\n"


@pytest.fixture(scope="module")
def net() -> MTNet:
    """The full network: where the precisions' agreement with fp32 is the point."""
    torch.manual_seed(0)
    return MTNet().eval()


@pytest.fixture(scope="module")
def tiny() -> MTNet:
    """The test-sized network: where the backends' plumbing is the point."""
    return tiny_mtnet(0)


@pytest.fixture(scope="module")
def clip() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 2, 3, 64, 64, generator=g), torch.randn(1, 2, 3, 64, 64, generator=g)


@pytest.fixture(scope="module")
def reference(net: MTNet, clip: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return net(*clip)


def test_cpuinfo_flags_of_the_first_processor() -> None:
    caps = cpu.cpu_capabilities(CPUINFO)
    assert caps == {
        "avx2": True,
        "avx512f": True,
        "avx512_bf16": True,
        "amx_tile": True,
        "amx_bf16": True,
        "amx_int8": True,
        "avx512_vnni": True,
        "avx_vnni": False,
    }
    assert cpu.has_native_bf16(caps, environ={})
    # oneDNN capped below its bf16 level: computed as on a CPU without it
    assert not cpu.has_native_bf16(caps, environ={"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert not cpu.has_native_bf16(caps, environ={"DNNL_MAX_CPU_ISA": "avx512_core_vnni"})
    assert cpu.has_native_bf16(caps, environ={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"})
    assert cpu.has_native_bf16(caps, environ={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"})
    avx2 = cpu.cpu_capabilities(AVX2_ONLY)
    assert [k for k, v in avx2.items() if v] == ["avx2"]
    assert not cpu.has_native_bf16(avx2, environ={})
    assert not any(cpu.cpu_capabilities("").values())


def test_cpu_description_is_one_line() -> None:
    line = cpu.cpu_description(AVX2_ONLY)
    assert line.startswith("AMD Ryzen 7 3700X; has AVX2; lacks AVX-512, AVX-512 BF16, AMX,")
    assert "torch ISA" in line and "\n" not in line
    assert cpu.cpu_description(CPUINFO).startswith(
        "Intel(R) Xeon(R) Platinum 8480+; has AVX2, AVX-512, AVX-512 BF16, AMX, AMX BF16, "
        "AMX INT8, AVX-512 VNNI; lacks AVX-VNNI;"
    )
    assert "unknown (no /proc/cpuinfo)" in cpu.cpu_description("")
    assert "capped" not in cpu.cpu_description(CPUINFO, environ={})
    capped = {"ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "OTHER": "x"}
    assert cpu.cpu_description(CPUINFO, environ=capped).endswith(
        "threads; capped by ONEDNN_MAX_CPU_ISA=AVX2, FBGEMM_ENABLE_INSTRUCTIONS=AVX2"
    )


@pytest.mark.parametrize(
    ("name", "device", "message"),
    [
        (
            "fp16",
            "cpu",
            "precision='fp16': runs on CUDA only, not on cpu (use bf16 or int8 on the CPU)",
        ),
        (
            "int8",
            "cuda",
            "precision='int8': int8 quantisation runs on the CPU only, not on cuda",
        ),
        (
            "tf32",
            "cpu",
            "precision='tf32': TF32 is a CUDA arithmetic, not on cpu (use fp32 there)",
        ),
        (
            "fp8",
            "cpu",
            "precision='fp8': expected one of fp32, tf32, bf16, fp16, int8, int8_static",
        ),
    ],
)
def test_precision_errors_are_one_line(name: str, device: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        precision.check_precision(name, torch.device(device))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_fp16_backend_on_cpu_is_refused(tiny: MTNet) -> None:
    with pytest.raises(InputError, match=r"^precision='fp16': runs on CUDA only"):
        make_backend(tiny, "fp16", device="cpu")  # refused at construction, before any clip


def test_bf16_without_native_support_warns_once(monkeypatch, caplog) -> None:
    monkeypatch.setattr(precision, "has_native_bf16", lambda caps=None: False)
    precision._warn_slow_bf16.cache_clear()
    with caplog.at_level(logging.WARNING, logger="inference.runtime.precision"):
        for _ in range(2):
            dtype = precision.autocast_dtype("bf16", torch.device("cpu"))
            with autocast(dtype, torch.device("cpu")):
                assert torch.get_autocast_dtype("cpu") == torch.bfloat16
                assert torch.is_autocast_enabled("cpu")
    precision._warn_slow_bf16.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "neither AVX-512 BF16 nor AMX BF16" in warnings[0] and "slower than fp32" in warnings[0]


def test_fp32_and_int8_autocast_nothing() -> None:
    for name in ("fp32", "int8"):
        dtype = precision.autocast_dtype(name, torch.device("cpu"))
        assert dtype is None
        with autocast(dtype, torch.device("cpu")):
            assert not torch.is_autocast_enabled("cpu")


def test_tf32_is_off_for_fp32_and_on_for_tf32_on_cuda_only() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert [precision.cuda_tf32(p, cuda) for p in ("fp32", "tf32", "bf16", "fp16")] == [
        False,
        True,
        None,
        None,
    ]
    assert precision.cuda_tf32("fp32", cpu) is None


@pytest.mark.parametrize("conv_tf32", [False, True])
def test_tf32_mode_sets_the_switches_and_restores_them(conv_tf32: bool) -> None:
    switches = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = [s.allow_tf32 for s in switches]
    for s in switches:
        s.allow_tf32 = not conv_tf32
    try:
        with pytest.raises(RuntimeError, match="inside"), precision.tf32_mode(conv_tf32):
            # convolutions as asked, matrix products fp32 (PyTorch's default) in both modes
            assert [s.allow_tf32 for s in switches] == [conv_tf32, False]
            raise RuntimeError("inside")
        assert [s.allow_tf32 for s in switches] == [not conv_tf32, not conv_tf32]
        with precision.tf32_mode(None):
            assert [s.allow_tf32 for s in switches] == [not conv_tf32, not conv_tf32]
    finally:
        for s, value in zip(switches, saved, strict=True):
            s.allow_tf32 = value


def test_tf32_mode_after_torch_fp32_precision_settings_is_one_line() -> None:
    # in a subprocess: torch's newer settings, once set, change this process for good
    code = (
        "import torch, inference.runtime.precision as p\n"
        "torch.backends.cudnn.conv.fp32_precision = 'ieee'\n"
        "with p.tf32_mode(False): pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "InputError: TF32: torch's fp32_precision settings were changed" in done.stderr


def test_torch_backend_runs_in_its_tf32_mode(tiny: MTNet, clip, monkeypatch) -> None:
    seen = []

    @contextlib.contextmanager
    def recorder(conv_tf32):
        seen.append(conv_tf32)
        yield

    monkeypatch.setattr(backend_module, "tf32_mode", recorder)
    backend = make_backend(tiny, "fp32")
    backend(*clip)
    backend.tf32 = False  # what cuda_tf32 gives fp32 on CUDA
    backend(*clip)
    assert seen == [None, False]


def test_fp32_backend_is_the_model_under_inference_mode(
    net: MTNet, clip: tuple[torch.Tensor, torch.Tensor], reference: torch.Tensor
) -> None:
    backend = make_backend(net)
    assert backend.model is net
    out = backend(*clip)
    assert out.dtype == torch.float32 and out.shape == (2, 1, 64, 64)
    assert torch.equal(out, reference)
    info = backend.describe()
    assert (info["precision"], info["runtime"], info["device"]) == ("fp32", "torch", "cpu")
    assert "torch ISA" in info["cpu"]
    assert describe_line(info).startswith("precision fp32, runtime torch, device cpu, ")


def test_int8_quantises_every_linear_of_a_copy(
    net: MTNet, clip: tuple[torch.Tensor, torch.Tensor], reference: torch.Tensor
) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    before = {k: v.clone() for k, v in net.state_dict().items()}
    n_linear = sum(type(m) is nn.Linear for m in net.modules())
    assert n_linear > 100  # ConvNeXt pointwise layers, attention projections, FFNs
    backend = make_backend(net, "int8")
    assert backend.model is not net
    assert sum(isinstance(m, DynamicLinear) for m in backend.model.modules()) == n_linear
    assert not any(type(m) is nn.Linear for m in backend.model.modules())
    out = backend(*clip)
    assert out.dtype == torch.float32 and out.shape == reference.shape
    assert not torch.equal(out, reference)  # it did run in int8
    assert (out - reference).abs().max() < 0.05
    # the fp32 model is untouched: same weights, same output
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert sum(type(m) is nn.Linear for m in net.modules()) == n_linear
    with torch.inference_mode():
        assert torch.equal(net(*clip), reference)


def test_quantize_int8_keeps_a_linear_close() -> None:
    torch.manual_seed(1)
    layer = nn.Linear(64, 32).eval()
    x = torch.randn(5, 64)
    seq = nn.Sequential(layer)
    q = quantize_int8(seq)
    assert type(seq[0]) is nn.Linear and type(q[0]) is not nn.Linear  # a quantised copy
    ref = layer(x)
    # int8 weights and activations: error of a few quantisation steps of the output scale
    assert (q(x) - ref).abs().max() < 0.02 * ref.abs().max()


def test_bf16_backend_close_to_fp32(
    net: MTNet, clip: tuple[torch.Tensor, torch.Tensor], reference: torch.Tensor
) -> None:
    backend = make_backend(net, "bf16")
    assert backend.model is net
    out = backend(*clip)
    assert out.dtype == torch.float32
    assert not torch.equal(out, reference)  # autocast was active
    assert (out - reference).abs().max() < 0.02


def test_channels_last_backend_is_a_copy(
    net: MTNet, clip: tuple[torch.Tensor, torch.Tensor], reference: torch.Tensor
) -> None:
    backend = TorchBackend(net, channels_last=True)
    conv = backend.model.backbone.body.stem_0
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert net.backbone.body.stem_0.weight.is_contiguous()
    torch.testing.assert_close(backend(*clip), reference, atol=1e-5, rtol=0)


class _Recorder(nn.Module):
    """Stands in for a compiled module: records the clip lengths it is called with."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.lengths = model, []

    def forward(self, imgs: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
        self.lengths.append(imgs.shape[1])
        return self.model(imgs, flows)


def test_compiled_backend_serves_one_clip_length_only(
    tiny: MTNet, clip: tuple[torch.Tensor, torch.Tensor], monkeypatch
) -> None:
    with torch.inference_mode():
        reference = tiny(*clip)
    calls = []

    def fake_compile(model, **kwargs):
        calls.append(kwargs)
        return _Recorder(model)

    monkeypatch.setattr(torch, "compile", fake_compile)
    with pytest.raises(ValueError, match="compile needs compile_length"):
        make_backend(tiny, compile=True)
    backend = make_backend(tiny, compile=True, compile_length=2)
    assert calls == [{"dynamic": False}]
    torch.testing.assert_close(backend(*clip), reference, atol=0, rtol=0)
    short = [x[:, :1] for x in clip]
    with torch.inference_mode():
        expected_short = tiny(*short)
    torch.testing.assert_close(backend(*short), expected_short, atol=0, rtol=0)
    backend(*clip)
    assert backend.compiled.compiled.lengths == [2, 2]  # the 1-frame clip ran uncompiled


def test_compiled_backend_for_a_set_length_leaves_a_first_short_clip_uncompiled(
    tiny: MTNet, clip: tuple[torch.Tensor, torch.Tensor], monkeypatch
) -> None:
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: _Recorder(model))
    backend = make_backend(tiny, compile=True, compile_length=2)
    backend(*[x[:, :1] for x in clip])  # e.g. a video shorter than the clip length first
    backend(*clip)
    assert backend.compiled.compiled.lengths == [2]
    assert (backend.describe()["compile"], backend.describe()["compile_length"]) == (True, 2)


def test_frozen_compiled_freezes_the_weights_and_agrees() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.GELU()).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 16, 16)
    compiled = FrozenCompiled(net)
    with torch.inference_mode():
        expected, out = net(x), compiled(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        net[0].weight.mul_(2)  # a graph compiled without freezing would follow this
    with torch.inference_mode():
        assert not torch.allclose(net(x), expected)
        torch.testing.assert_close(compiled(x), out, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runtime": "tensorrt"}, "runtime='tensorrt': expected one of torch, onnxruntime"),
        (
            {"runtime": "onnxruntime", "precision": "bf16"},
            "precision='bf16': the onnxruntime runtime runs fp32 only",
        ),
        (
            {"runtime": "onnxruntime", "compile": True},
            "channels_last and compile are options of the torch runtime",
        ),
        ({"runtime": "onnxruntime"}, "runtime='onnxruntime' needs an ONNX file, onnx_path"),
        ({"precision": "int8", "compile": True}, "compile with precision='int8':"),
    ],
)
def test_backend_combinations_that_cannot_run(tiny: MTNet, kwargs: dict, message: str) -> None:
    with pytest.raises(InputError) as err:
        make_backend(tiny, **kwargs)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_training_model_is_refused(tiny: MTNet) -> None:
    tiny.train()
    try:
        with pytest.raises(ValueError, match="eval-mode model"):
            make_backend(tiny)
    finally:
        tiny.eval()


def test_amp_is_bf16_on_cuda_and_refused_beside_another_precision() -> None:
    from inference.config import parse_config
    from inference.session import precision as run_precision

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert run_precision(parse_config(["--video", "v.mp4", "--amp"]), cuda) == "bf16"
    amp_fp16 = parse_config(["--video", "v.mp4", "--amp", "--amp_dtype", "fp16"])
    assert run_precision(amp_fp16, cuda) == "fp16"
    both = parse_config(["--video", "v.mp4", "--amp", "--precision", "tf32"])
    with pytest.raises(InputError, match=r"^--amp with --precision tf32: --amp means"):
        run_precision(both, cuda)
    assert run_precision(parse_config(["--video", "v.mp4", "--amp"]), cpu) == "fp32"
