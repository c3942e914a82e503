"""Speed, memory and agreement of MTNet's precision modes and runtimes against fp32.

    python -m benchmarks.precision_speed                        # 512x512, clips of 9
    python -m benchmarks.precision_speed --size 128 128 --clip 3 --repeats 2 --agree_frames 9
    python -m benchmarks.precision_speed --weights model.pth    # agreement on trained weights
    python -m benchmarks.precision_speed --weights trained      # ... on a briefly trained model
    python -m benchmarks.precision_speed --no_compile           # without the compiled modes
    python -m benchmarks.precision_speed --device cuda          # the modes a GPU runs

The compiled modes (``torch.compile`` with Inductor's freezing) take minutes to compile,
once per size (the speed run's, then the agreement's for each weights), shown under
"first s"; their memory is not measured (a fresh process would compile again).

Speed: every mode runs in this one process, alternated round by round (fp32, bf16, int8,
...; then again, each round starting one mode later), so a machine whose load drifts slows
all modes alike and no mode always runs after the same one; each mode's
speed-up is the median over rounds of fp32's time / its time in the same round. Inputs
are random (speed does not depend on them). The network's FLOPs are counted once
(``FlopCounterMode``, fp32) to give each mode's effective GFLOP/s, printed beside a large
matrix product's GFLOP/s on the same threads: fp32's headroom on this CPU.

Memory: resident memory after building each mode and its peak over one clip, in a fresh
subprocess per mode (``VmRSS`` and ``VmHWM``, after ``retain_freed_memory`` as in test.py).
Linux only. On CUDA: the GPU memory PyTorch allocated before building, after building and
at peak over one clip, measured in this process (``torch.cuda.max_memory_allocated``).

Devices: ``--device cuda`` runs the modes a GPU runs (fp32 with TF32 off, tf32, bf16 and
fp16 autocast, channels_last, compile), synchronising before each clock read; its matrix
product is 8192^3.

Agreement: the UVOS masks (mean IoU) and VSOD maps (mean |d|/255) of each mode against
fp32's, through test.py's post-processing, on DAVIS-16 validation videos at
``--agree_size`` (random inputs when the shared data is absent), for the rebuildable
random weights (seed 0) and, with ``--weights``, for a trained model. On random weights
the probabilities are flat and the masks noise-like, so agreement there says little.
``--weights trained`` uses a model that has learned something: main_train from scratch on
the shared DAVIS-16 videos at 256x256 for ``--train_iters`` steps (batch 2; 300 steps and
the final validation take about 45 minutes on two CPU cores), made once with train.py into
``--train_cache`` (outside the repository) and reused.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from benchmarks.common import (
    DATA_ROOT,
    REPO,
    count_flops,
    matmul_gflops,
    matmul_size,
    synchronize,
    timed,
)
from benchmarks.modes import MODES, Mode
from inference.postprocess import to_masks
from inference.runtime import Backend, Calibration, export_onnx, make_backend
from inference.runtime.int8_static import calibrate
from inference.runtime.int8_static import calibration_clips as int8_calibration_clips
from model import MTNet, build_mtnet
from util.cpu import cpu_description, has_native_bf16
from util.distributed import resolve_device
from util.memory import retain_freed_memory
from util.metrics import frame_ious

VIDEOS = ["car-shadow", "motocross-jump", "scooter-black"]  # the shortest: 40, 40, 43 frames
CALIBRATION_VIDEOS = ["blackswan", "bmx-trees", "breakdance"]  # int8_static's ranges
SEED = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument("--clip", type=int, default=9, help="frames per clip")
    p.add_argument("--repeats", type=int, default=3, help="alternated rounds")
    p.add_argument(
        "--modes", nargs="+", default=None, choices=list(MODES), help="default: all --device runs"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--no_compile", action="store_true", help="leave out the torch.compile modes (minutes)"
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument(
        "--weights",
        default=None,
        help="trained weights for the agreement check ('trained': "
        "the briefly trained model of --train_cache, made when missing)",
    )
    p.add_argument("--train_cache", type=Path, default=Path.home() / ".cache" / "mtnet-bench")
    p.add_argument("--train_iters", type=int, default=300, help="steps of the trained model")
    p.add_argument("--root", default=str(DATA_ROOT), help="holds DAVIS16/val/{frame,flow}")
    p.add_argument("--videos", nargs="+", default=VIDEOS)
    p.add_argument("--agree_size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"))
    p.add_argument("--agree_frames", type=int, default=0, help="first N frames per video (0: all)")
    p.add_argument("--no_memory", action="store_true", help="skip the per-mode memory runs")
    p.add_argument("--no_agreement", action="store_true", help="skip the agreement check")
    p.add_argument("--memory_one", help=argparse.SUPPRESS)  # mode name, run in a subprocess
    p.add_argument("--onnx", help=argparse.SUPPRESS)  # the subprocess's ONNX file
    args = p.parse_args(argv)
    try:
        args.device = resolve_device(args.device)
    except ValueError as exc:
        p.error(str(exc))
    args.modes = list(args.modes or [n for n, m in MODES.items() if m.runs_on(args.device)])
    refused = [n for n in args.modes if not MODES[n].runs_on(args.device)]
    if refused:
        p.error(f"--modes {' '.join(refused)}: not run on {args.device}")
    if args.no_compile:
        args.modes = [n for n in args.modes if not MODES[n].compile]
    if "fp32" not in args.modes:
        args.modes.insert(0, "fp32")
    return args


def random_model(device: torch.device) -> MTNet:
    """The rebuildable random network (seed ``SEED``), eval mode, on ``device``."""
    return build_mtnet(device="cpu", seed=SEED).to(device)


@dataclass
class Artefacts:
    """What some modes need beside the model, made once per weights and size: the ONNX
    export (onnxruntime) and the calibrated ranges (int8_static)."""

    onnx_path: Path | None = None
    calibration: Calibration | None = None


def build(mode: Mode, model: MTNet, made: Artefacts, clip_length: int) -> Backend:
    return make_backend(
        model,
        mode.precision,
        mode.runtime,
        channels_last=mode.channels_last,
        compile=mode.compile,
        compile_length=clip_length,
        onnx_path=made.onnx_path if mode.runtime == "onnxruntime" else None,
        calibration=made.calibration if mode.precision == "int8_static" else None,
    )


def artefacts(
    args: argparse.Namespace, model: MTNet, size: tuple[int, int], folder: Path, tag: str
) -> Artefacts:
    """The ONNX export and the int8 calibration of ``model`` at ``size``, where a mode of
    the run needs them."""
    made = Artefacts()
    if any(MODES[n].runtime == "onnxruntime" for n in args.modes):
        made.onnx_path = export_for(model, size, folder, tag)
    if any(MODES[n].precision == "int8_static" for n in args.modes):
        made.calibration = calibrate(model, calibration_clips(args, size), size, tag)
    return made


def calibration_clips(args: argparse.Namespace, size: tuple[int, int]) -> list:
    """The first clip of each of ``CALIBRATION_VIDEOS`` (not among the agreement videos),
    as ``python -m inference.int8_static`` takes them, or one random clip when the shared
    data is absent."""
    if not (Path(args.root) / "DAVIS16" / "val").is_dir():
        return [("random", *random_clip(args.clip, *size))]
    return list(
        int8_calibration_clips("DAVIS16", args.root, CALIBRATION_VIDEOS, 0, args.clip, size)
    )


def random_clip(
    t: int, h: int, w: int, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(SEED)
    imgs, flows = torch.randn(1, t, 3, h, w, generator=g), torch.randn(1, t, 3, h, w, generator=g)
    return imgs.to(device), flows.to(device)


def export_for(model: MTNet, size: tuple[int, int], folder: Path, tag: str) -> Path:
    """An ONNX file of ``model`` at ``size`` in ``folder`` (no graph optimiser: onnxruntime
    optimises at load, and the optimiser adds minutes)."""
    path = folder / f"mtnet_{tag}_{size[0]}x{size[1]}.onnx"
    if not path.is_file():
        start = time.perf_counter()
        export_onnx(model, path, size, optimize=False)
        print(f"  exported {path.name} in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def speed(args: argparse.Namespace, model: MTNet, made: Artefacts) -> dict[str, dict]:
    """Alternated rounds: per mode, warm-up (and compile) time, times and speed-ups."""
    h, w = args.size
    imgs, flows = random_clip(args.clip, h, w, args.device)
    backends, results = {}, {}
    for name in args.modes:
        backend = build(MODES[name], model, made, args.clip)
        first = timed(backend, imgs, flows)  # warm-up: oneDNN plans, compilation, ORT arenas
        backends[name], results[name] = backend, {"first_s": first, "times": []}
        if args.device.type == "cuda":
            results[name]["clip_mib"] = clip_memory_mib(backend, imgs, flows)
    rounds = tqdm(range(args.repeats), desc="alternated rounds", unit="round", file=sys.stderr)
    names = list(backends)
    for i in rounds:
        # each round starts one mode later: no mode always follows the same one (a runtime
        # whose threads keep spinning after its run slows whichever mode comes next)
        for name in names[i % len(names) :] + names[: i % len(names)]:
            results[name]["times"].append(timed(backends[name], imgs, flows))
    fp32 = results["fp32"]["times"]
    for r in results.values():
        r["median_s"] = statistics.median(r["times"])
        r["speedup"] = statistics.median(a / b for a, b in zip(fp32, r["times"], strict=True))
    return results


def clip_memory_mib(backend: Backend, imgs: torch.Tensor, flows: torch.Tensor) -> float:
    """GPU MiB that one clip allocates at its peak above what is allocated before it."""
    synchronize(imgs.device)
    before = torch.cuda.memory_allocated(imgs.device)
    torch.cuda.reset_peak_memory_stats(imgs.device)
    backend(imgs, flows)
    synchronize(imgs.device)
    return (torch.cuda.max_memory_allocated(imgs.device) - before) / 2**20


def memory_one(args: argparse.Namespace) -> None:
    """Subprocess: one mode, one clip; prints resident MiB before and after building the
    mode and at peak (building int8 or channels_last keeps fp32's freed memory for reuse)."""
    mode = MODES[args.memory_one]
    base_mib = _status_mib("VmRSS")
    model = random_model(args.device)
    backend = build(mode, model, Artefacts(Path(args.onnx) if args.onnx else None), args.clip)
    model_mib = _status_mib("VmRSS")
    backend(*random_clip(args.clip, *args.size))
    print(
        json.dumps({"base_mib": base_mib, "model_mib": model_mib, "peak_mib": _status_mib("VmHWM")})
    )


def _status_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MiB.

    Not ``ru_maxrss``: a child started by fork and exec inherits the parent's maximum.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def cuda_memory(args: argparse.Namespace, model: MTNet) -> dict[str, dict]:
    """Per uncompiled mode, GPU MiB allocated before building, after building and at peak
    over one clip, one mode at a time in this process."""
    out = {}
    clip = random_clip(args.clip, *args.size, args.device)
    for name in tqdm(args.modes, desc="memory", unit="mode", file=sys.stderr):
        if MODES[name].compile:
            continue
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(args.device)
        backend = build(MODES[name], model, Artefacts(), args.clip)
        built = torch.cuda.memory_allocated(args.device)
        torch.cuda.reset_peak_memory_stats(args.device)
        backend(*clip)
        peak = torch.cuda.max_memory_allocated(args.device)
        out[name] = {"base_mib": base / 2**20, "model_mib": built / 2**20, "peak_mib": peak / 2**20}
        del backend
    return out


def memory(args: argparse.Namespace, made: Artefacts, model: MTNet) -> dict[str, dict]:
    if args.device.type == "cuda":
        return cuda_memory(args, model)
    out = {}
    for name in tqdm(args.modes, desc="memory", unit="mode", file=sys.stderr):
        if MODES[name].compile:
            continue  # a fresh process would compile again: minutes for one figure
        cmd = [sys.executable, "-m", "benchmarks.precision_speed", "--memory_one", name]
        cmd += ["--size", *map(str, args.size), "--clip", str(args.clip)]
        cmd += ["--threads", str(torch.get_num_threads())]
        cmd += ["--onnx", str(made.onnx_path)] if made.onnx_path else []
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def agreement_clips(args: argparse.Namespace) -> tuple[str, list]:
    """(description, clips) of the agreement inputs: DAVIS-16 val clips, or random ones."""
    from dataclasses import replace

    from dataset.registry import resolve_benchmark
    from dataset.test_videos import VideoClips, pair_video

    size = tuple(args.agree_size)
    if not (Path(args.root) / "DAVIS16" / "val").is_dir():
        imgs, flows = random_clip(args.clip, *size, args.device)
        clip = (imgs, flows, tuple([size] * args.clip))
        return f"random inputs ({args.root}/DAVIS16/val is absent), {args.clip} frames", [clip]
    bench = resolve_benchmark("DAVIS16", args.root)
    clips, frames = [], 0
    for name in args.videos:
        video = pair_video(bench.video(name), drop_tail=False)
        if args.agree_frames:
            n = args.agree_frames
            video = replace(video, frames=video.frames[:n], flows=video.flows[:n])
        for c in VideoClips(video, args.clip, size):
            clips.append((c.imgs[None], c.flows[None], c.sizes))
            frames += len(c.names)
    return f"DAVIS-16 val {', '.join(args.videos)}: {frames} frames", clips


def agreement(
    args: argparse.Namespace, model: MTNet, clips: list, made: Artefacts
) -> dict[str, tuple[float, float]]:
    """Per mode: (mean IoU of UVOS masks, mean |d|/255 of VSOD maps) against fp32."""
    outputs: dict[str, list[torch.Tensor]] = {}
    for name in tqdm(args.modes, desc="agreement", unit="mode", file=sys.stderr):
        backend = build(MODES[name], model, made, args.clip)
        outputs[name] = [backend(imgs, flows).cpu() for imgs, flows, _ in clips]
    result = {}
    for name, probs in outputs.items():
        ious, diffs = [], []
        for prob, ref, (_, _, sizes) in zip(probs, outputs["fp32"], clips, strict=True):
            for m, r in zip(
                to_masks(prob, sizes, "UVOS"), to_masks(ref, sizes, "UVOS"), strict=True
            ):
                ious.append(frame_ious(m[None, None] / 255, r[None, None] / 255).item())
            for m, r in zip(
                to_masks(prob, sizes, "VSOD"), to_masks(ref, sizes, "VSOD"), strict=True
            ):
                diffs.append((m.float() - r.float()).abs().mean().item() / 255)
        result[name] = (statistics.fmean(ious), statistics.fmean(diffs))
    return result


def print_speed(args, results, mem, flops: int, matmul: dict[str, float]) -> None:
    h, w = args.size
    print(f"\nspeed at {h}x{w}, clips of {args.clip}, {args.repeats} alternated rounds")
    print(
        f"network: {flops / 1e9:.1f} GFLOP per clip ({flops / 1e9 / args.clip:.1f} per frame); "
        f"{matmul_size(args.device)}^3 matmul on the same {processor(args.device)}: "
        f"fp32 {matmul['fp32']:.0f} GFLOP/s, "
        f"bf16 {matmul['bf16']:.0f} GFLOP/s (best of before/after)"
    )
    header = f"{'mode':20s} {'frames/s':>9s} {'x fp32':>7s} {'GFLOP/s':>8s} {'first s':>8s}"
    header += f" {'base MiB':>9s} {'model MiB':>10s} {'peak MiB':>9s}"
    header += f" {'clip MiB':>9s}" if args.device.type == "cuda" else ""
    print(header)
    for name, r in results.items():
        fps = args.clip / r["median_s"]
        m = mem.get(name)
        mems = f" {'-':>9s} {'-':>10s} {'-':>9s}"
        if m:
            mems = f" {m['base_mib']:9.0f} {m['model_mib']:10.0f} {m['peak_mib']:9.0f}"
        print(
            f"{name:20s} {fps:9.3f} {r['speedup']:7.2f} {flops / r['median_s'] / 1e9:8.1f} "
            f"{r['first_s']:8.1f}{mems}" + (f" {r['clip_mib']:9.0f}" if "clip_mib" in r else "")
        )
    print("frames/s: median round; x fp32: median over rounds of fp32's time / the mode's time")
    if args.device.type == "cuda":
        print(
            "MiB: GPU memory allocated before building, after building, peak over one clip "
            "(one mode at a time); clip: what one clip adds at its peak (all modes built)"
        )
    else:
        print("MiB: resident before building, after building, peak over one clip (own process)")


def processor(device: torch.device) -> str:
    """``threads`` on the CPU, ``GPU`` on CUDA: where the matrix product ran."""
    return "GPU" if device.type == "cuda" else "threads"


def print_agreement(what: str, inputs: str, size, result) -> None:
    print(f"\nagreement with fp32, {what}, {inputs}, at {size[0]}x{size[1]}")
    print(f"{'mode':20s} {'UVOS mean IoU':>14s} {'VSOD mean |d|/255':>18s}")
    for name, (iou, diff) in result.items():
        print(f"{name:20s} {iou:14.4f} {diff:18.5f}")


def trained_weights(args: argparse.Namespace) -> Path:
    """The briefly trained model (see the module docstring), trained once and cached."""
    run_dir = args.train_cache / "MTNet" / "main_train"
    path = run_dir / f"{args.train_iters}_checkpoint.pth"
    if path.is_file():
        return path
    print(f"training the agreement model ({args.train_iters} steps) into {run_dir}", flush=True)
    subprocess.run(
        [
            sys.executable, "train.py", "--stage", "main_train", "--root", args.root,
            "--train_dataset", "DAVIS16/val", "--val_dataset", "DAVIS16/val", "--imsize", "256",
            "--batch_size", "2", "--max_iter", str(args.train_iters), "--eval_iter", "1000000",
            "--save_checkpoint_interval", str(args.train_iters), "--log_image_interval",
            "1000000", "--exp", str(args.train_cache), "--device", "cpu", "--num_workers", "1",
        ],
        cwd=REPO,
        check=True,
    )  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    retain_freed_memory()  # as test.py does
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_one:
        memory_one(args)
        return
    native = "native" if has_native_bf16() else "EMULATED (no AVX-512 BF16 / AMX, or capped): slow"
    print(f"MTNet precision modes, torch {torch.__version__}")
    print(f"CPU: {cpu_description()}")
    if args.device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(args.device)}, CUDA {torch.version.cuda}")
    else:
        print(f"bf16 on this CPU: {native}")
    print(f"modes on {args.device}: {', '.join(args.modes)}", flush=True)
    model = random_model(args.device)
    size = tuple(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        made = artefacts(args, model, size, folder, "random")
        dev = args.device
        matmul = {
            "fp32": matmul_gflops(torch.float32, dev),
            "bf16": matmul_gflops(torch.bfloat16, dev),
        }
        flops = count_flops(model, *random_clip(args.clip, *size, dev))
        results = speed(args, model, made)
        matmul = {
            "fp32": max(matmul["fp32"], matmul_gflops(torch.float32, dev)),
            "bf16": max(matmul["bf16"], matmul_gflops(torch.bfloat16, dev)),
        }
        mem = {} if args.no_memory else memory(args, made, model)
        print_speed(args, results, mem, flops, matmul)
        if args.no_agreement:
            return
        inputs, clips = agreement_clips(args)
        agree_size = tuple(args.agree_size)
        weights = [("random weights (seed 0)", model, "random")]
        if args.weights:
            if args.weights == "trained":
                args.weights = str(trained_weights(args))
            trained = build_mtnet(None, weights=args.weights, device=str(args.device))
            weights.append((f"trained weights {args.weights}", trained, "trained"))
        for what, net, tag in weights:
            made = artefacts(args, net, agree_size, folder, tag)
            print_agreement(what, inputs, agree_size, agreement(args, net, clips, made))


if __name__ == "__main__":
    main()
