"""The test loop (DESIGN.md §8): plan the videos, stream clips, run the network, write masks.

Notation: T frames per clip, H, W the test size.

Per dataset, the videos are paired and planned first (file listings only), sharded
across torchrun ranks (rank r takes videos r, r + W, ...), then their clips are read by a
``DataLoader`` with workers while the network runs, and the masks are written by a
background thread pool. Every rank writes its own videos' files, so N processes write
exactly the files of one. The predictor and the run's record come from
``inference.session``; the record is written (and checked by ``--skip_existing``) by
``inference.record``.

With ``--video`` the one video's frames and flows are made first by the pipeline that
``MTNetPredictor.segment_video`` uses (``inference.video_input``), and it runs through the
same loop as a dataset of one video, followed by an overlay video.
"""

from __future__ import annotations

import contextlib
import logging
import os
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import ConcatDataset, DataLoader
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from dataset.registry import Benchmark, resolve_benchmark
from dataset.test_videos import PairedVideo, VideoClips, pair_video
from dataset.worker_errors import ErrorsAsValues
from util.distributed import DistInfo, cleanup, init_distributed
from util.errors import InputError
from util.fileio import check_no_links, write_json
from util.image import MASK_EXT
from util.layout import DrawnVideo, done_path, mask_path, output_name
from util.resources import cap_workers, check_clip_memory

from .config import TestConfig, default_num_workers
from .predictor import MTNetPredictor
from .record import SessionRecord, check_same, done_stamp, read_stamp, write_record
from .session import open_session
from .video_input import VideoInput
from .writer import MaskWriter

log = logging.getLogger(__name__)

WARMING_UP = (
    "warming up: the first clip is the slowest (reading, the network's first pass); the "
    "progress bar moves as each clip ends"
)


@dataclass(frozen=True)
class VideoJob:
    """One video to segment and the folder its masks go to (``{frame stem}.png``)."""

    video: PairedVideo
    out_dir: Path

    def is_done(self, stamp: dict) -> bool:
        """Finished by a run of these settings: the video's stamp (written once its last
        mask was on disk) equals ``stamp`` (``record.done_stamp``) and every mask exists."""
        if read_stamp(done_path(self.out_dir)) != stamp:
            return False
        return all(mask_path(self.out_dir, stem).is_file() for stem in self.video.stems)

    def has_masks(self) -> bool:
        """Some mask of this video exists (a run began it)."""
        return any(mask_path(self.out_dir, stem).is_file() for stem in self.video.stems)


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
    dataset = output_name(bench.name, "data set")
    return [
        VideoJob(
            pair_video(bench.video(n), drop_tail),
            layout.video_dir(dataset, output_name(n, "video")),
        )
        for n in names
    ]


def run_jobs(
    jobs: list[VideoJob],
    predictor: MTNetPredictor,
    cfg: TestConfig,
    bar: tqdm,
    stamp: dict | None = None,
) -> Stats:
    """Segment ``jobs`` in order: clips streamed by a DataLoader, masks written behind.

    ``bar`` counts frames; it moves as each clip ends. With ``stamp`` (``record.done_stamp``),
    a video's old stamp goes before its first mask is written and the new one is written
    once its last mask is on disk, so a stopped run leaves no stamp that claims its masks.
    """
    stats = Stats()
    if not jobs:
        return stats
    clips = [VideoClips(job.video, cfg.test_length, cfg.test_size) for job in jobs]
    owners = [(j, i == 0, i == len(c) - 1) for j, c in enumerate(clips) for i in range(len(c))]
    on_cpu = predictor.device.type == "cpu"
    loader = DataLoader(
        ErrorsAsValues(ConcatDataset(clips)),
        batch_size=None,
        num_workers=reading_processes(cfg, predictor.device, len(owners)),
        pin_memory=not on_cpu,
        worker_init_fn=_yield_to_network if on_cpu else None,
    )
    writer = MaskWriter(initializer=_yield_to_network if on_cpu else None)
    writes: list[Future] = []  # the current video's
    unstamped: list[tuple[Path, list[Future]]] = []  # finished videos, masks still being written
    with writer, torch.inference_mode():
        for (j, first, last), clip in zip(owners, loader, strict=True):
            if isinstance(clip, InputError):
                raise clip
            if first and stamp is not None:
                done_path(jobs[j].out_dir).unlink(missing_ok=True)
            result = predictor.predict(clip)
            for name, mask in zip(clip.names, result.masks, strict=True):
                writes.append(writer.submit(mask_path(jobs[j].out_dir, name), mask))
            stats.frames += len(clip.names)
            stats.network_s += result.seconds
            stats.videos += last
            bar.update(len(clip.names))
            bar.set_postfix(videos=f"{stats.videos}/{len(jobs)}")
            if last and stamp is not None:
                unstamped.append((jobs[j].out_dir, writes))
            if last:
                writes = []
            unstamped = _stamp_written(unstamped, stamp)
    _stamp_written(unstamped, stamp)  # the writer has closed: every mask is on disk
    return stats


def _stamp_written(
    videos: list[tuple[Path, list[Future]]], stamp: dict | None
) -> list[tuple[Path, list[Future]]]:
    """Write ``stamp`` for each video whose mask writes have all succeeded; the others."""
    waiting = []
    for out_dir, writes in videos:
        if all(w.done() and w.exception() is None for w in writes):
            write_json(done_path(out_dir), stamp)
        else:
            waiting.append((out_dir, writes))
    return waiting


def reading_processes(cfg: TestConfig, device: torch.device, clips: int) -> int:
    """``--num_workers``, or the machine's default for ``device``, capped by the ``clips`` to
    read and the cores (``util.resources.cap_workers``, which says so)."""
    if cfg.num_workers is None:
        return cap_workers(default_num_workers(device), clips, flag=None)
    return cap_workers(cfg.num_workers, clips)


def _yield_to_network(*_: object) -> None:
    """Lower the calling reader process or writer thread's priority (``nice`` 10).

    On the CPU, readers and writers share the cores with the network's compute threads, which
    wait for each other at every parallel region: a reader that preempts one of them stalls
    all. At low priority, reading and writing fill the network's idle moments instead
    (``benchmarks/infer_speed.py`` compares end to end with the network alone).
    """
    with contextlib.suppress(OSError):
        os.nice(10)  # per thread on Linux; a raised nice is allowed without privileges


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


def _write_record(record: SessionRecord, path: Path, info: DistInfo) -> None:
    """This run's record at ``path`` (written by the main rank)."""
    if info.is_main:
        write_record(path, record)


def _select(jobs: list[VideoJob], info: DistInfo, stamp: dict | None) -> list[VideoJob]:
    """This rank's share (videos r, r + W, ...), without the videos finished with these
    settings (``stamp``) when given (``--skip_existing``)."""
    mine = jobs[info.rank :: info.world_size]
    if stamp is None:
        return mine
    todo = [job for job in mine if not job.is_done(stamp)]
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
    masks = [mask_path(j.out_dir, s) for _, jobs in plans for j in jobs for s in j.video.stems]
    stamps = [done_path(j.out_dir) for _, jobs in plans for j in jobs]
    check_no_links(cfg.output_dir, [cfg.layout().config_path, *stamps, *masks], "--output_dir")
    return plans


def run(cfg: TestConfig) -> Stats:
    """test.py: every dataset of ``cfg``; returns the totals over all ranks."""
    try:
        info = init_distributed(cfg.device)
    except ValueError as err:  # --device names a device this machine lacks
        raise InputError(str(err)) from err
    try:
        if not cfg.no_memory_check:  # before the weights are read or any frame
            check_clip_memory(cfg.test_size, cfg.test_length, info.device)
        if cfg.video is not None:
            return run_video(cfg, info)
        plans = plan(cfg)
        session = open_session(cfg, info.device)
        if cfg.skip_existing:
            begun = any(job.has_masks() for _, jobs in plans for job in jobs)
            check_same(cfg.layout().config_path, session.record, begun)
        _write_record(session.record, cfg.layout().config_path, info)
        log.info(WARMING_UP)
        stamp = done_stamp(session.record.masks)
        total = Stats()
        for name, jobs in plans:
            mine = _select(jobs, info, stamp if cfg.skip_existing else None)
            total.add(run_dataset(name, mine, session.predictor, cfg, info, stamp))
        if info.is_main and len(plans) > 1:
            _log_summary("all", total, info)
        _warn_if_untrained(cfg)
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
    record_path = layout.clip_record_path(source.name)
    overlays = DrawnVideo(layout.overlay_dir, source.name).paths
    clip_dir = layout.clip_dir(source.name)
    outputs = [record_path, done_path(clip_dir), source.work / "flow", clip_dir, *overlays]
    check_no_links(cfg.output_dir, [*outputs, source.work / "frame"], "--output_dir")
    session = open_session(cfg, info.device, source)
    predictor = session.predictor
    if cfg.skip_existing:  # before the work folder changes
        begun = any(clip_dir.glob(f"*{MASK_EXT}"))
        check_same(record_path, session.record, begun)
    video = source.prepare(predictor.flow, predictor.device)
    _write_record(session.record, record_path, info)
    job = VideoJob(video, clip_dir)
    stamp = done_stamp(session.record.masks, source.fingerprint())
    todo = _select([job], info, stamp if cfg.skip_existing else None)
    if todo:
        log.info(WARMING_UP)
    stats = run_dataset(source.name, todo, predictor, cfg, info, stamp)
    label = cfg.model_name if cfg.test_model else f"{cfg.model_name} (untrained)"
    overlay = source.write_overlay(video, job.out_dir, layout.overlay_dir, cfg.task_name, label)
    log.info("%d masks in %s; overlay video %s", len(video.frames), job.out_dir, overlay)
    _warn_if_untrained(cfg)
    return stats


def _warn_if_untrained(cfg: TestConfig) -> None:
    """The closing reminder of a run without weights (the first warning scrolled away)."""
    if cfg.test_model is None:
        log.warning("the masks come from an UNTRAINED network (see the warning above)")


def run_dataset(
    name: str,
    jobs: list[VideoJob],
    predictor: MTNetPredictor,
    cfg: TestConfig,
    info: DistInfo,
    stamp: dict | None = None,
) -> Stats:
    """One dataset on this rank, with a progress bar over its frames (main rank: frames/s
    and the time left, moving as each clip ends) and the summary line; each finished
    video gets ``stamp`` (``run_jobs``)."""
    desc = f"{cfg.task_name} {name}"
    total = sum(len(job.video.frames) for job in jobs)
    bar = tqdm(total=total, desc=desc, unit="frame", disable=not info.is_main)
    with logging_redirect_tqdm(), bar:
        stats = _reduce(run_jobs(jobs, predictor, cfg, bar, stamp), info)
    if info.is_main:
        _log_summary(desc, stats, info)
    return stats
