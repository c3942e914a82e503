"""One training step of DESIGN.md §7 and its optimiser: forward under AMP, the loss,
backward, AdamW."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from util.amp import amp_dtype, autocast
from util.metrics import frame_ious

from .loss import mtnet_loss


def build_optimizer(model: nn.Module, lr: float) -> torch.optim.AdamW:
    """AdamW (0.9, 0.999), eps 1e-8, weight decay 0.05 on every parameter; two groups:
    the encoder (``model.backbone``) and the rest, same lr and decay (DESIGN.md §7)."""
    backbone = list(model.backbone.parameters())
    ids = {id(p) for p in backbone}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": backbone, "name": "backbone"}, {"params": rest, "name": "rest"}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: dict[str, Tensor],
    device: torch.device,
    use_amp: bool,
) -> tuple[dict[str, float], tuple[Tensor, ...]]:
    """One optimiser step on a batch of ``[B, T, ...]`` clips (``use_amp``: autocast in
    the device's default dtype, fp16 on CUDA, with ``scaler`` enabled alike).

    Returns the step's ``loss``, ``main``, ``aux`` and training ``iou`` as floats and the
    four logit maps ``[B*T, 1, H, W]`` (detached).
    """
    imgs = batch["imgs"].to(device, non_blocking=True)
    flows = batch["flows"].to(device, non_blocking=True)
    masks = batch["masks"].to(device, non_blocking=True).flatten(0, 1)
    with autocast(amp_dtype(device, use_amp), device):
        logits = model(imgs, flows)
        loss, parts = mtnet_loss(logits, masks)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    iou = frame_ious(torch.sigmoid(logits[0].detach().float()), masks).mean()
    values = torch.stack([loss.detach(), parts["main"], parts["aux"], iou]).tolist()
    return dict(zip(("loss", "main", "aux", "iou"), values, strict=True)), tuple(
        x.detach() for x in logits
    )
