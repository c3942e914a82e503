"""The MTNet training loop (DESIGN.md §7) on one process or many (torchrun, DDP).

Outputs, in ``{exp}/{model_name}/{stage}/`` and written by rank 0 only:
``config.json``, ``train.log``, ``tb/`` (TensorBoard), ``images/<it>.png`` (progress
grids), ``<it>_checkpoint.pth`` (resume checkpoints), ``best.pth`` and
``best_<it>_<iou>.pth`` and ``last.pth`` (release model files ``{"it", "network"}``).
The loop takes exactly ``max_iter`` steps (the release takes one more, §7).

Before anything is written the output folder is checked, a ``--resume`` checkpoint
loaded, and every training and validation file opened as an image (header only); the
start-up's log lines are held in memory until ``train.log`` may be written. A file that cannot be read, or a loss or weights that
stop being finite, stops every rank together with one line naming the file or the
iteration; no file with non-finite weights is ever written (DESIGN.md §7).
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter

from dataset.train_clips import MIN_TRAIN_SIDE, TrainClips, check_files
from dataset.val_videos import ValClips
from model import build_mtnet
from model.weights import load_encoder_weights, load_weights, save_model_file
from util.distributed import DistInfo, barrier, init_distributed, raise_on_every_rank
from util.errors import InputError
from util.fileio import atomic_path, check_no_links, check_output_dir

from .checkpoints import (
    latest_checkpoint,
    load_resume_checkpoint,
    prune_checkpoints,
    save_resume_checkpoint,
)
from .config import TrainConfig
from .loader import ResumableBatches, train_loader
from .rng_state import capture_rng_state, restore_rng_state, seed_everything
from .schedule import lr_at
from .step import build_optimizer, set_lr, train_step
from .validate import evaluate
from .visualize import progress_grid, save_grid

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run leaves: the bare network, its step count and best score."""

    model: nn.Module
    it: int
    best_iou: float | None
    run_dir: Path


@dataclass
class _Window:
    """Running sums between two log lines."""

    sums: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.steps += 1


@contextlib.contextmanager
def _root_at_info() -> Iterator[logging.Logger]:
    """The root logger, letting INFO records through for the duration."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(min(level, logging.INFO))
    try:
        yield root
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def _held_log() -> Iterator[logging.handlers.MemoryHandler]:
    """Hold INFO and above of every logger in memory for the duration (the start-up, before
    the run folder may be made); :func:`_log_file` writes them first."""
    held = logging.handlers.MemoryHandler(capacity=1 << 20, flushLevel=logging.CRITICAL + 1)
    held.setLevel(logging.INFO)
    with _root_at_info() as root:
        root.addHandler(held)
        try:
            yield held
        finally:
            root.removeHandler(held)


@contextlib.contextmanager
def _log_file(run_dir: Path, held: logging.handlers.MemoryHandler | None = None) -> Iterator[None]:
    """Append INFO and above of every logger to ``run_dir/train.log`` for the duration,
    after the records ``held`` during the start-up."""
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if held is not None:
        held.setTarget(handler)
        held.flush()
        held.close()
    with _root_at_info() as root:
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)
            handler.close()


def _write_config(cfg: TrainConfig, info: DistInfo, run_dir: Path) -> None:
    resolved = {**cfg.to_dict(), "world_size": info.world_size, "device": str(info.device)}
    text = json.dumps(resolved, indent=2, sort_keys=True)
    log.info("config:\n%s", text)
    with atomic_path(run_dir / "config.json") as tmp:
        tmp.write_text(text + "\n")


def _gather_rng(info: DistInfo) -> dict:
    """Every rank's RNG states, in rank order (collective under DDP)."""
    mine = capture_rng_state()
    if not info.distributed:
        return {"world_size": 1, "ranks": [mine]}
    states: list[dict | None] = [None] * info.world_size
    dist.all_gather_object(states, mine)
    return {"world_size": info.world_size, "ranks": states}


def _restore(cfg: TrainConfig, info: DistInfo, model: nn.Module, path: Path, optimizer, scaler):
    """Load a resume checkpoint into the network, optimiser, scaler and RNGs.

    Returns ``(it, best_iou)``.
    """
    state = load_resume_checkpoint(path)
    load_weights(model, path)
    optimizer.load_state_dict(state["optimizer"])
    if scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    rng = state.get("rng") or {}
    if rng.get("world_size") == info.world_size:
        restore_rng_state(rng["ranks"][info.rank])
    else:
        log.warning("%s holds RNG states of %s ranks; reseeding", path, rng.get("world_size"))
        seed_everything(cfg.seed + info.rank + int(state["it"]))
    return int(state["it"]), state.get("best_iou")


def _agreed_checkpoint(cfg: TrainConfig, info: DistInfo) -> Path | None:
    """With ``--resume``, rank 0's newest checkpoint, the same for every rank.

    Every rank then reads that file, so multi-node runs need a shared run folder; a rank
    that cannot see it fails with an error naming the file.
    """
    path = latest_checkpoint(cfg.run_dir) if cfg.resume and info.is_main else None
    if info.distributed:
        box = [path]
        dist.broadcast_object_list(box, src=0)
        path = box[0]
    return path


def _initial_weights(cfg: TrainConfig, model: nn.Module) -> None:
    """Where a fresh run starts (DESIGN.md §7), said in the log: the model file
    ``--pretrain_model_path`` when given (network only; train_s.sh passes the pre-train
    ``best.pth`` to main_train), else the ImageNet encoder weights ``--encoder_weights``
    (read only then), else random weights."""
    if cfg.pretrain_model_path is not None:
        it = load_weights(model, cfg.pretrain_model_path)
        log.info("%s starts from %s (iteration %s)", cfg.stage, cfg.pretrain_model_path, it)
    elif cfg.encoder_weights is not None:
        load_encoder_weights(model.backbone, cfg.encoder_weights)
        log.info(
            "%s starts from the ImageNet encoder weights %s (no --pretrain_model_path); the "
            "rest of the network from random weights", cfg.stage, cfg.encoder_weights,
        )  # fmt: skip
    else:
        log.warning(
            "%s starts from random weights (no --pretrain_model_path, no --encoder_weights)",
            cfg.stage,
        )


def _log_window(
    window: _Window, it: int, cfg: TrainConfig, lr: float, info: DistInfo, writer
) -> None:
    """Log the window's mean losses and IoU (averaged over ranks), speed and ETA."""
    keys = sorted(window.sums)
    means = torch.tensor([window.sums[k] / window.steps for k in keys], device=info.device)
    if info.distributed:
        dist.all_reduce(means)
        means /= info.world_size
    sec_per_it = (time.perf_counter() - window.start) / window.steps
    eta = sec_per_it * (cfg.max_iter - it)
    values = dict(zip(keys, means.tolist(), strict=True))
    if info.is_main:
        log.info(
            "it %d/%d lr %.2e loss %.4g (main %.4g aux %.4g) iou %.4f %.3g s/it eta %s",
            it, cfg.max_iter, lr, values["loss"], values["main"], values["aux"],
            values["iou"], sec_per_it, _eta(eta),
        )  # fmt: skip
        for key, value in values.items():
            writer.add_scalar(f"train/{key}", value, it)
        writer.add_scalar("train/lr", lr, it)
        writer.add_scalar("train/sec_per_it", sec_per_it, it)


def _validate(
    cfg: TrainConfig,
    info: DistInfo,
    model: nn.Module,
    val_data: ValClips,
    it: int,
    best,
    writer,
    use_amp: bool,
) -> float | None:
    """Validate, keep ``best.pth`` when strictly better; returns the new best score."""
    if info.distributed:  # plain BatchNorm buffers differ per rank; score rank 0's
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
    start = time.perf_counter()
    iou = evaluate(
        model, val_data, info.device, cfg.val_first_frame_only, cfg.num_workers,
        info.rank, info.world_size, use_amp=use_amp,
    )  # fmt: skip
    improved = best is None or iou > best
    if info.is_main:
        log.info(
            "validation at it %d: mean IoU %.4f (best %s) in %.1f s",
            it, iou, f"{best:.4f}" if best is not None else "-", time.perf_counter() - start,
        )  # fmt: skip
        writer.add_scalar("val/iou", iou, it)
        if improved:
            best_path = cfg.run_dir / "best.pth"
            save_model_file(best_path, model, it)
            save_model_file(cfg.run_dir / f"best_{it}_{iou:.4f}.pth", model, it)
            log.info("new best mean IoU %.4f at it %d: wrote %s", iou, it, best_path)
    return iou if improved else best


def _checkpoint(cfg: TrainConfig, info: DistInfo, it: int, model, optimizer, scaler, best) -> None:
    """Write ``<it>_checkpoint.pth`` (rank 0) with every rank's RNG states; prune old ones."""
    rng = _gather_rng(info)
    if info.is_main:
        path = save_resume_checkpoint(
            cfg.run_dir, it, model, optimizer.state_dict(), scaler.state_dict(), rng, best
        )
        log.info("saved %s", path)
        prune_checkpoints(cfg.run_dir, cfg.keep_checkpoints)


class TrainingDiverged(InputError):
    """The loss or the weights stopped being finite; nothing of that iteration is saved."""


def _main_rank_check(info: DistInfo, check) -> None:
    """Run ``check()`` on the main rank; an ``InputError`` it raises stops every rank with
    the same line (so that no rank waits in a collective for one that has stopped)."""
    error = None
    if info.is_main:
        try:
            check()
        except InputError as err:
            error = err
    raise_on_every_rank(error, info.device)


def _check_step(loss: float, model: nn.Module, it: int, lr: float, info: DistInfo) -> None:
    """Stop every rank together when a rank's loss or the weights are not finite (``lr``:
    the base learning rate, for the message).

    Checked after each optimiser step and before anything of the iteration is logged,
    validated or saved, so every file on disk holds finite weights and ``--resume``
    continues from the newest checkpoint, the last good state.
    """
    norm = float(torch.nn.utils.get_total_norm(model.parameters()))  # NaN/inf propagate
    if not math.isfinite(loss):
        problem = f"the loss is {loss}"
    elif not math.isfinite(norm):
        problem = f"the weights' norm is {norm}"
    else:
        problem = None
    error = None
    if problem is not None:
        error = TrainingDiverged(
            f"iteration {it}: {problem}; training diverged and stopped, nothing of this "
            f"iteration was saved (lower -lr {lr:g}; --resume continues from the newest "
            "checkpoint)"
        )
    raise_on_every_rank(error, info.device)


def train(cfg: TrainConfig) -> TrainResult:
    """Run one training stage as configured; every rank of a torchrun job calls this.

    Nothing is written (no run folder, no ``config.json``, no log) before every check has
    passed: the output folder, the data and its files, and a ``--resume`` checkpoint that
    loads; a finished run's folder is never touched by a start that fails. The process
    group (if any) is left initialised for the caller to clean up.
    """
    info = init_distributed(cfg.device)
    _main_rank_check(info, cfg.check_datasets)
    _main_rank_check(info, lambda: _check_run_dir(cfg))
    if not info.is_main:
        return _loop(cfg, info, _prepare(cfg, info))
    with _held_log() as held:
        ready = _prepare(cfg, info)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    with _log_file(cfg.run_dir, held):
        _write_config(cfg, info, cfg.run_dir)
        return _loop(cfg, info, ready)


def _check_run_dir(cfg: TrainConfig) -> None:
    """The run folder can be written, and holds no link out of ``--exp`` where the run
    writes (``train.log`` is appended to, not replaced)."""
    check_output_dir(cfg.run_dir, "--exp")
    outputs = [cfg.run_dir / name for name in ("train.log", "config.json", "tb", "images")]
    check_no_links(cfg.exp, outputs, "--exp")


class _Setup(NamedTuple):
    """The network (bare and as trained: DDP-wrapped under torchrun), optimiser, scaler, and
    where training stands: the steps taken and the best validation score so far."""

    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    it: int
    best: float | None


def _setup(cfg: TrainConfig, info: DistInfo, use_amp: bool) -> _Setup:
    """Build the network and optimiser, then resume, or start a stage's training afresh."""
    device = info.device
    seed_everything(cfg.seed)  # identical initial weights on every rank
    model = build_mtnet(cfg.encoder_name, device=device, untrained_ok=True).train()
    optimizer = build_optimizer(model, cfg.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    resume_from = _agreed_checkpoint(cfg, info)
    it, best = 0, None
    if resume_from is not None:
        it, best = _restore(cfg, info, model, resume_from, optimizer, scaler)
        log.info("resumed from %s at iteration %d", resume_from, it)
    else:
        if cfg.resume:
            log.warning("--resume: no checkpoint in %s; starting from the beginning", cfg.run_dir)
        _initial_weights(cfg, model)
        seed_everything(cfg.seed + info.rank)
    net: nn.Module = model
    if info.distributed:
        if device.type == "cuda":  # PyTorch's SyncBatchNorm runs on GPUs only
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    return _Setup(model, net, optimizer, scaler, it, best)


def _check_files(train_data: TrainClips, val_data: ValClips) -> None:
    """Every training and validation file opens as an image (header only)."""
    start = time.perf_counter()
    count = check_files(train_data.videos, MIN_TRAIN_SIDE) + check_files(val_data.videos)
    log.info(
        "checked %d training and validation files in %.1f s", count, time.perf_counter() - start
    )


def _log_due(it: int, cfg: TrainConfig, last_line: float, info: DistInfo) -> bool:
    """Whether iteration ``it`` logs a line: every ``--print_every`` steps, at the last
    step, and when ``--print_seconds`` have passed since the last line (rank 0's clock,
    so that every rank joins the line's all-reduce)."""
    if it % cfg.print_every == 0 or it == cfg.max_iter:
        return True
    if not cfg.print_seconds:
        return False
    due = torch.tensor(float(time.perf_counter() - last_line >= cfg.print_seconds))
    if info.distributed:
        due = due.to(info.device)
        dist.broadcast(due, src=0)
    return bool(due)


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _Ready(NamedTuple):
    """A checked start: the network and where training stands, the data and its loader."""

    setup: _Setup
    use_amp: bool
    loader: torch.utils.data.DataLoader
    val_data: ValClips


def _prepare(cfg: TrainConfig, info: DistInfo) -> _Ready:
    """Build the network (resuming or starting afresh), the data and its loader, and check
    every file; writes nothing."""
    device = info.device
    use_amp = device.type == "cuda" and not cfg.no_amp
    setup = _setup(cfg, info, use_amp)
    train_data = TrainClips(cfg.train_root, cfg.imsize, seed=cfg.seed + info.rank)
    batches = ResumableBatches(
        train_data, cfg.batch_size, info.rank, info.world_size, cfg.seed, setup.it, cfg.max_iter
    )
    loader = train_loader(
        train_data, batches, cfg.num_workers, cfg.seed + info.rank, device.type == "cuda"
    )
    val_data = ValClips(
        cfg.val_root, cfg.imsize, cfg.val_first_frame_only, cfg.val_videos, cfg.val_max_frames
    )
    val_data.check_scored(cfg.val_first_frame_only)  # refused now, not at the first validation
    _main_rank_check(info, lambda: _check_files(train_data, val_data))
    if info.is_main:
        log.info(
            "%d training videos (%d steps per epoch per process), %d validation videos, "
            "%d processes on %s, AMP %s",
            len(train_data), batches.batches_per_epoch, len(val_data.videos),
            info.world_size, device, "on" if use_amp else "off",
        )  # fmt: skip
    return _Ready(setup, use_amp, loader, val_data)


def _loop(cfg: TrainConfig, info: DistInfo, ready: _Ready) -> TrainResult:
    """The training steps, validation and checkpoints of a prepared run."""
    device, run_dir, use_amp = info.device, cfg.run_dir, ready.use_amp
    model, net, optimizer, scaler, it, best = ready.setup
    loader, val_data = ready.loader, ready.val_data
    writer = SummaryWriter(run_dir / "tb", purge_step=it or None) if info.is_main else None

    window = _Window()
    last_line = time.perf_counter()
    net.train()
    for batch in loader:
        raise_on_every_rank(batch if isinstance(batch, InputError) else None, device)
        lr = lr_at(it, cfg.lr, cfg.warm_up_steps, cfg.max_iter, cfg.lr_schedule)
        set_lr(optimizer, lr)
        values, logits = train_step(net, optimizer, scaler, batch, device, use_amp)
        it += 1
        _check_step(values["loss"], model, it, cfg.lr, info)
        window.add(values)
        if _log_due(it, cfg, last_line, info):
            _log_window(window, it, cfg, lr, info, writer)
            window, last_line = _Window(), time.perf_counter()
        if info.is_main and it % cfg.log_image_interval == 0:
            grid = progress_grid(
                batch["imgs"],
                batch["flows"],
                batch["masks"].flatten(0, 1),
                torch.sigmoid(logits[0]),
            )
            save_grid(grid, run_dir / "images" / f"{it:07d}.png")
            writer.add_image("train/grid", grid, it)
        paused = time.perf_counter()
        if it % cfg.eval_iter == 0 or it == cfg.max_iter:
            best = _validate(cfg, info, model, val_data, it, best, writer, use_amp)
        if it % cfg.save_checkpoint_interval == 0:
            _checkpoint(cfg, info, it, model, optimizer, scaler, best)
        window.start += time.perf_counter() - paused  # s/it counts training steps only
    if info.is_main:
        save_model_file(run_dir / "last.pth", model, it)
        best_text = f"{best:.4f}" if best is not None else "-"
        log.info("finished %d iterations; best mean IoU %s; files in %s", it, best_text, run_dir)
        writer.close()
    barrier()
    return TrainResult(model=model, it=it, best_iou=best, run_dir=run_dir)
