"""Validation of DESIGN.md §7: mean over videos of the per-video mean IoU at ``imsize``.

Eval mode, consecutive clips of 3, probability > 0.5 (no min-max), IoU 1 when prediction
and ground truth are both empty. By default every frame with a mask is scored (every frame
of a densely annotated set); ``first_frame_only`` reproduces the release, which scores
frame 0 of each video only (``ValClips.scored``). A set with no frame to score is an error,
never a score. Under DDP each rank runs
the videos ``v`` with ``v % world_size == rank`` and the sums are all-reduced.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from dataset.val_videos import ValClips
from dataset.worker_errors import ErrorsAsValues, collate_or_error
from util.amp import amp_dtype, autocast
from util.distributed import raise_on_every_rank
from util.errors import InputError
from util.metrics import frame_ious


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: ValClips,
    device: torch.device,
    first_frame_only: bool = False,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    use_amp: bool = False,
    progress: bool = True,
) -> float:
    """Score ``model`` (the bare network, not a DDP wrapper) on ``data``; returns mean IoU.

    Raises ``InputError`` (on every rank, before the network runs) when ``data`` has no
    frame to score (:meth:`ValClips.check_scored`).

    With ``use_amp`` the network runs under autocast (fp16 on CUDA), as training does and
    as the release validates (DESIGN.md §7). Every rank must call this (it all-reduces
    under DDP). The model is put back in training mode afterwards. Rank 0 shows a progress
    bar over its frames (on stderr; ``progress=False`` hides it).
    """
    data.check_scored(first_frame_only)  # the same data on every rank: all stop together
    mine = [i for i, clip in enumerate(data.clips) if clip.video % world_size == rank]
    loader = DataLoader(
        ErrorsAsValues(Subset(data, mine)),
        batch_size=1,
        collate_fn=collate_or_error,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),  # leaves the global RNG untouched
    )
    sums = torch.zeros(len(data.videos), dtype=torch.float64, device=device)
    counts = torch.zeros_like(sums)
    model.eval()
    error = None
    frames = sum(data.clips[i].length for i in mine)
    bar = tqdm(
        total=frames,
        desc="validation",
        unit="frame",
        leave=False,
        disable=not progress or rank != 0,
    )
    for index, batch in zip(mine, loader, strict=False):  # in order: batch k is clip mine[k]
        if isinstance(batch, InputError):  # a file that cannot be read: every rank stops
            error = batch
            break
        with autocast(amp_dtype(device, use_amp), device):
            prob = model(batch["imgs"].to(device), batch["flows"].to(device))
        ious = frame_ious(prob.float(), batch["masks"].to(device).flatten(0, 1))
        ious = ious[torch.tensor(data.scored(index, first_frame_only), device=device)]
        video = int(batch["video"])
        sums[video] += ious.double().sum()
        counts[video] += ious.numel()
        bar.update(len(prob))
    bar.close()
    model.train()
    raise_on_every_rank(error, device)
    if world_size > 1:
        dist.all_reduce(sums)
        dist.all_reduce(counts)
    scored = counts > 0  # check_scored: at least one video
    return float((sums[scored] / counts[scored]).mean())
