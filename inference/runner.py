"""The test loop (DESIGN.md §8): stream clips, run the network, write masks.

Notation: T frames per clip, H, W the test size.

Per dataset, the videos are paired and planned first (file listings only), sharded
across torchrun ranks (rank r takes videos r, r + W, ...), then their clips are read by a
``DataLoader`` with workers while the network runs, and the masks are written by a
background thread pool. Every rank writes its own videos' files, so N processes write
exactly the files of one.

With ``--video`` the one video's frames and flows are made first (``inference.video_input``)
and it runs through the same loop as a dataset of one video, followed by an overlay video.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from dataset.registry import Benchmark, resolve_benchmark
from dataset.test_videos import PairedVideo, VideoClips, pair_video
from dataset.worker_errors import ErrorsAsValues
from model import build_mtnet, variant_of_file
from model.variants import DEFAULT_VARIANT
from util.distributed import DistInfo, cleanup, init_distributed
from util.errors import InputError
from util.fileio import atomic_path, sha256_file
from util.layout import mask_path

from . import config
from .backend import check_runtime, describe_line
from .config import TestConfig, default_num_workers
from .export_onnx import export_onnx
from .int8_static import Calibration, load_calibration
from .predictor import MTNetPredictor
from .video_input import VideoInput
from .weights_args import RANDOM_SEED, RANDOM_WEIGHTS
from .writer import MaskWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoJob:
    """One video to segment and the folder its masks go to (``{frame stem}.png``)."""

    video: PairedVideo
    out_dir: Path

    def is_done(self) -> bool:
        """All masks exist (each is written atomically, so existing ones are complete)."""
        return all(mask_path(self.out_dir, stem).is_file() for stem in self.video.stems)


@dataclass
class Stats:
    """Counts for the release's summary: frames, time in the network's forward."""

    videos: int = 0
    frames: int = 0
    network_s: float = 0.0

    def add(self, other: Stats) -> None:
        self.videos += other.videos
        self.frames += other.frames
        self.network_s += other.network_s

    @property
    def fps(self) -> float:
        return self.frames / self.network_s if self.network_s > 0 else 0.0


def plan_benchmark(bench: Benchmark, cfg: TestConfig) -> list[VideoJob]:
    """Pair every selected video of ``bench``; outputs under
    ``{output_dir}/{model_name}/{task}/{dataset}/{video}/``."""
    names = bench.video_names()
    if not names:
        raise InputError(
            f"{bench.frame_root}: no video folders; expected <video>/ folders of frames"
        )
    if cfg.videos is not None:
        names = [n for n in names if n in set(cfg.videos)]
    drop_tail = bench.drop_tail if cfg.drop_tail is None else cfg.drop_tail
    layout = cfg.layout()
    return [
        VideoJob(pair_video(bench.video(n), drop_tail), layout.video_dir(bench.name, n))
        for n in names
    ]


def build_model(cfg: TestConfig, device: torch.device) -> nn.Module:
    """MTNet with the weights of ``cfg.test_model``, in eval mode on ``device``.

    No ``test_model`` (``--video`` without weights): randomly initialised with a fixed seed
    (the global RNG is left as it was), with a warning that the masks mean nothing.
    """
    if cfg.test_model is not None:
        return build_mtnet(cfg.encoder_name, weights=cfg.test_model, device=device)
    log.warning(untrained_warning())
    return build_mtnet(cfg.encoder_name, device=device, seed=RANDOM_SEED)


def make_predictor(cfg: TestConfig, device: torch.device) -> MTNetPredictor:
    """The predictor of a test run: the network, the task, the size, the precision and
    runtime (with ``--runtime onnxruntime`` and no ``--onnx``, the network is exported once
    into ``{output_dir}/{model_name}/onnx/`` and the file reused by later runs)."""
    mode = precision(cfg, device)
    # before the weights are read or the network exported
    check_runtime(
        cfg.runtime,
        mode,
        device,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        calibrated=cfg.int8_calibration is not None,
    )
    calibration = int8_calibration(cfg)
    model = build_model(cfg, device)
    onnx_path = cfg.onnx
    if cfg.runtime == "onnxruntime" and onnx_path is None:
        onnx_path = cached_onnx(model, cfg)
    predictor = MTNetPredictor(
        model if cfg.runtime == "torch" else None,
        cfg.task_name,
        cfg.test_size,
        cfg.test_length,
        device=device,
        precision=mode,
        runtime=cfg.runtime,
        onnx_path=onnx_path,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        int8_calibration=calibration,
        flow=cfg.flow_settings(),
    )
    log.info("network: %s", describe_line(predictor.describe()))
    return predictor


def int8_calibration(cfg: TestConfig) -> Calibration | None:
    """The ranges of ``--int8_calibration``, checked against the weights (``None`` without
    the flag)."""
    if cfg.int8_calibration is None:
        return None
    calibration = load_calibration(cfg.int8_calibration)
    weights = weights_id(cfg)  # hashes the weights file: once
    if calibration.weights != weights:
        raise InputError(
            f"{calibration.path}: calibrated for weights {calibration.weights}, not "
            f"{weights}; calibrate again for these weights"
        )
    return calibration


def weights_id(cfg: TestConfig) -> str:
    """What the weights are: the file's SHA-256, or the untrained network's seed."""
    if cfg.test_model is None:
        return RANDOM_WEIGHTS
    return sha256_file(cfg.test_model)


def cached_onnx(model: nn.Module, cfg: TestConfig) -> Path:
    """The network's ONNX export for the test size, made once per weights and size."""
    height, width = cfg.test_size
    tag = weights_id(cfg).split()[0][:16]
    path = cfg.layout().model_root / "onnx" / f"{model.encoder_name}_{tag}_{height}x{width}.onnx"
    if not path.is_file():
        log.info("exporting the network to %s (once; later runs reuse it)", path)
        export_onnx(
            model.cpu(), path, cfg.test_size, metadata={"mtnet.weights": str(cfg.test_model)}
        )
    return path


# Settings that decide the masks' values: a folder is completed (--skip_existing) only
# with the same ones.
_MASK_SETTINGS = ("weights", "encoder_name", "test_size", "test_length", "precision", "runtime",
                  "channels_last", "compile", "int8_calibration")  # fmt: skip


def provenance(cfg: TestConfig, predictor: MTNetPredictor) -> dict[str, object]:
    """What made the masks: the weights' hash and the settings and backend of the run."""
    return {
        "weights": weights_id(cfg),
        "encoder_name": variant_of_run(cfg),
        "test_size": list(cfg.test_size),
        "test_length": cfg.test_length,
        "channels_last": cfg.channels_last,
        **predictor.describe(),
    }


def variant_of_run(cfg: TestConfig) -> str:
    """The variant the run builds: ``--encoder_name``, else the weights file's."""
    if cfg.encoder_name is not None:
        return cfg.encoder_name
    if cfg.test_model is None:
        return DEFAULT_VARIANT
    return variant_of_file(cfg.test_model)


def check_same_settings(cfg: TestConfig, made_by: dict[str, object]) -> None:
    """With ``--skip_existing``: refuse to complete masks begun with other weights or
    another mode (the folder would mix two models' masks)."""
    path = cfg.layout().config_path
    try:
        before = json.loads(path.read_text()).get("provenance", {})
    except (OSError, ValueError, AttributeError):
        return  # nothing begun yet (or no record): nothing to compare
    changed = [k for k in _MASK_SETTINGS if k in before and before[k] != made_by.get(k)]
    if changed:
        key = changed[0]
        raise InputError(
            f"{path}: the masks there were begun with {key} {before[key]}, this run has "
            f"{made_by.get(key)}; expected the same settings to complete them with "
            "--skip_existing, or another --output_dir / --model_name"
        )


def untrained_warning() -> str:
    """The warning of a run without weights (names the default weights file)."""
    return (
        f"no --test_model and no {config.DEFAULT_MODEL}: the network is UNTRAINED (random weights, "
        f"seed {RANDOM_SEED}), so the masks are meaningless; this is only a smoke run of "
        "the pipeline. For real masks get mtnet.pth from the authors' MTNet release and put "
        "it in saves/ (see saves/README.md), or pass --test_model FILE"
    )


def run_jobs(
    jobs: list[VideoJob],
    predictor: MTNetPredictor,
    cfg: TestConfig,
    bar: tqdm,
    per_frame: bool = False,
) -> Stats:
    """Segment ``jobs`` in order: clips streamed by a DataLoader, masks written behind.

    ``bar`` counts videos, or frames with ``per_frame``.
    """
    stats = Stats()
    if not jobs:
        return stats
    clips = [VideoClips(job.video, cfg.test_length, cfg.test_size) for job in jobs]
    owners = [(j, i == len(c) - 1) for j, c in enumerate(clips) for i in range(len(c))]
    on_cpu = predictor.device.type == "cpu"
    loader = DataLoader(
        ErrorsAsValues(ConcatDataset(clips)),
        batch_size=None,
        num_workers=reading_processes(cfg, predictor.device),
        pin_memory=not on_cpu,
        worker_init_fn=_yield_to_network if on_cpu else None,
    )
    start = time.perf_counter()
    writer = MaskWriter(initializer=_yield_to_network if on_cpu else None)
    with writer, torch.inference_mode():
        for (j, last), clip in zip(owners, loader, strict=True):
            if isinstance(clip, InputError):
                raise clip
            result = predictor.predict(clip)
            for name, mask in zip(clip.names, result.masks, strict=True):
                writer.submit(mask_path(jobs[j].out_dir, name), mask)
            stats.frames += len(clip.names)
            stats.network_s += result.seconds
            stats.videos += last
            bar.update(len(clip.names) if per_frame else int(last))
            bar.set_postfix(
                frames=stats.frames, fps=f"{stats.frames / (time.perf_counter() - start):.2f}"
            )
    return stats


def reading_processes(cfg: TestConfig, device: torch.device) -> int:
    """``--num_workers``, or the machine's default for ``device``."""
    return cfg.num_workers if cfg.num_workers is not None else default_num_workers(device)


def _yield_to_network(*_: object) -> None:
    """Lower the calling reader process or writer thread's priority (``nice`` 10).

    On the CPU, readers and writers share the cores with the network's compute threads, which
    wait for each other at every parallel region: a reader that preempts one of them stalls
    all. At low priority, reading and writing fill the network's idle moments instead
    (benchmarks/infer_speed.py, 2 cores, 512x512: end-to-end 87% -> 95% of network-only).
    """
    with contextlib.suppress(OSError):
        os.nice(10)  # per thread on Linux; a raised nice is allowed without privileges


def precision(cfg: TestConfig, device: torch.device) -> str:
    """The forward pass's precision: ``--precision``, or ``--amp_dtype`` with ``--amp`` on
    CUDA (``--amp`` on the CPU runs in fp32, with a warning; beside another ``--precision``
    on CUDA, ``InputError``)."""
    if not cfg.amp:
        return cfg.precision
    if device.type != "cuda":
        log.warning("--amp works on CUDA only; running in %s on %s", cfg.precision, device)
        return cfg.precision
    if cfg.precision != "fp32":
        raise InputError(
            f"--amp with --precision {cfg.precision}: --amp means --precision {cfg.amp_dtype} "
            "on CUDA; give one or the other"
        )
    return cfg.amp_dtype


def _reduce(stats: Stats, info: DistInfo) -> Stats:
    """Sum the counts over ranks (every rank gets the totals)."""
    if not info.distributed:
        return stats
    t = torch.tensor([stats.videos, stats.frames, stats.network_s], dtype=torch.float64)
    t = t.to(info.device)
    dist.all_reduce(t)
    videos, frames, network_s = t.tolist()
    return Stats(int(videos), int(frames), network_s)


def _log_summary(what: str, stats: Stats, info: DistInfo) -> None:
    procs = f" on {info.world_size} processes" if info.distributed else ""
    log.info(
        "%s: %d videos, %d frames, network time %.2f s%s, FPS %.2f",
        what,
        stats.videos,
        stats.frames,
        stats.network_s,
        procs,
        stats.fps,
    )


def _write_config(cfg: TestConfig, made_by: dict[str, object]) -> None:
    """``test_config.json``: the settings and the provenance of the run."""
    record = {**asdict(cfg), "provenance": made_by}
    with atomic_path(cfg.layout().config_path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")


def _start(cfg: TestConfig, predictor: MTNetPredictor, info: DistInfo) -> None:
    """Check ``--skip_existing`` against the folder's record, then log and write the
    settings (main rank)."""
    made_by = provenance(cfg, predictor)
    if cfg.skip_existing:
        check_same_settings(cfg, made_by)
    if info.is_main:
        log.info("config %s", json.dumps(asdict(cfg)))
        _write_config(cfg, made_by)


def _select(jobs: list[VideoJob], info: DistInfo, skip_existing: bool) -> list[VideoJob]:
    """This rank's share (videos r, r + W, ...), without finished videos if asked."""
    mine = jobs[info.rank :: info.world_size]
    if not skip_existing:
        return mine
    todo = [job for job in mine if not job.is_done()]
    if len(todo) < len(mine):
        log.info("skipping %d videos already written", len(mine) - len(todo))
    return todo


def plan(cfg: TestConfig) -> list[tuple[str, list[VideoJob]]]:
    """(dataset name, its videos) for every ``--test_dataset``; raises ``InputError`` early.

    Any list of ``VideoJob`` can be run the same way (e.g. a single folder of frames and
    flows with its own output folder).
    """
    benches = [resolve_benchmark(dataset, cfg.root) for dataset in cfg.test_dataset]
    for bench in benches:
        if cfg.task_name not in bench.tasks:
            log.warning(
                "%s is not a %s benchmark of the paper; running it anyway",
                bench.name,
                cfg.task_name,
            )
    plans = [(bench.name, plan_benchmark(bench, cfg)) for bench in benches]
    if cfg.videos is not None:
        found = {job.video.name for _, jobs in plans for job in jobs}
        missing = [v for v in cfg.videos if v not in found]
        if missing:
            roots = ", ".join(str(b.frame_root) for b in benches)
            raise InputError(
                f"{roots}: no video {missing[0]}; expected a folder of that name (--videos)"
            )
    return plans


def run(cfg: TestConfig) -> Stats:
    """test.py: every dataset of ``cfg``; returns the totals over all ranks."""
    try:
        info = init_distributed(cfg.device)
    except ValueError as err:  # --device names a device this machine lacks
        raise InputError(str(err)) from err
    try:
        if cfg.video is not None:
            return run_video(cfg, info)
        plans = plan(cfg)
        predictor = make_predictor(cfg, info.device)
        _start(cfg, predictor, info)
        total = Stats()
        for name, jobs in plans:
            mine = _select(jobs, info, cfg.skip_existing)
            total.add(run_dataset(name, mine, predictor, cfg, info))
        if info.is_main and len(plans) > 1:
            _log_summary("all", total, info)
        return total
    finally:
        cleanup()


def run_video(cfg: TestConfig, info: DistInfo) -> Stats:
    """test.py --video: frames and flows, masks of every frame, then the overlay video.

    The weights are loaded before any frame or flow is made, so a bad ``--test_model``
    fails at once.
    """
    if info.distributed:
        raise InputError(f"{cfg.video}: --video runs in one process; start it without torchrun")
    if cfg.drop_tail:
        log.warning("--drop_tail is ignored with --video: every frame gets a mask")
    if cfg.videos is not None:
        log.warning("--videos is ignored with --video")
    layout = cfg.layout()
    source = VideoInput.resolve(cfg.video, layout.work_root)
    predictor = make_predictor(cfg, info.device)
    video = source.prepare(cfg.flow_settings(), info.device)
    _start(cfg, predictor, info)
    job = VideoJob(video, layout.clip_dir(source.name))
    todo = _select([job], info, cfg.skip_existing)
    stats = run_dataset(source.name, todo, predictor, cfg, info, per_frame=True)
    label = cfg.model_name if cfg.test_model else f"{cfg.model_name} (untrained)"
    overlay = source.write_overlay(video, job.out_dir, layout.overlay_dir, cfg.task_name, label)
    log.info("%d masks in %s; overlay video %s", len(video.frames), job.out_dir, overlay)
    if cfg.test_model is None:
        log.warning("the masks come from an UNTRAINED network (see the warning above)")
    return stats


def run_dataset(
    name: str,
    jobs: list[VideoJob],
    predictor: MTNetPredictor,
    cfg: TestConfig,
    info: DistInfo,
    per_frame: bool = False,
) -> Stats:
    """One dataset on this rank, with a progress bar (main rank; counting videos, or frames
    with ``per_frame``) and the summary line."""
    desc = f"{cfg.task_name} {name}"
    total, unit = len(jobs), "video"
    if per_frame:
        total, unit = sum(len(job.video.frames) for job in jobs), "frame"
    bar = tqdm(total=total, desc=desc, unit=unit, disable=not info.is_main)
    with logging_redirect_tqdm(), bar:
        stats = _reduce(run_jobs(jobs, predictor, cfg, bar, per_frame), info)
    if info.is_main:
        _log_summary(desc, stats, info)
    return stats
