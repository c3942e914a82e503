"""Optimisation pieces of DESIGN.md §7: lr schedule, loss, optimiser, config, checkpoints."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from dataset.val_videos import ValClips, load_val_mask
from tests.train_helpers import synthetic_root
from training.checkpoints import latest_checkpoint, list_checkpoints, prune_checkpoints
from training.config import config_from_args
from training.loss import mtnet_loss
from training.rng_state import capture_rng_state, restore_rng_state
from training.schedule import lr_at
from training.step import build_optimizer
from training.validate import evaluate
from util.checkpoint import atomic_torch_save, load_file
from util.metrics import frame_ious


@pytest.mark.parametrize(
    ("it", "expected"),
    [
        (0, 1e-6),
        (750, 1e-6 + (1e-4 - 1e-6) * 0.5),
        (1499, 1e-6 + (1e-4 - 1e-6) * 1499 / 1500),
        (1500, 1e-4),
        (1501, 1e-4 * (1 - 1 / 78_501)),
        (40_000, 1e-4 * (1 - 38_500 / 78_501)),
        (79_999, 1e-4 * (1 - 78_499 / 78_501)),
    ],
)
def test_pre_train_schedule(it, expected):
    assert lr_at(it, 1e-4, 1500, 80_000) == pytest.approx(expected, rel=1e-12)


def test_schedule_never_reaches_zero_and_main_stage_is_constant():
    assert lr_at(99, 1e-4, 0, 100) == pytest.approx(1e-4 * 2 / 101)
    assert lr_at(0, 1e-4, 0, 100) == 1e-4
    assert all(lr_at(i, 1e-4, 0, 10_000, "constant") == 1e-4 for i in (0, 5_000, 9_999))


def test_loss_weights():
    target = torch.rand(6, 1, 8, 8)
    logits = [torch.full((6, 1, 8, 8), v) for v in (0.3, -1.0, 2.0, 0.5)]
    total, parts = mtnet_loss(logits, target)
    bce = [F.binary_cross_entropy_with_logits(x, target) for x in logits]
    torch.testing.assert_close(total, bce[0] + 0.5 * (bce[1] + bce[2] + bce[3]))
    torch.testing.assert_close(parts["main"], bce[0])
    # logged as the release logs it: the weighted term, so that total = main + aux
    torch.testing.assert_close(parts["aux"], 0.5 * (bce[1] + bce[2] + bce[3]))
    torch.testing.assert_close(parts["main"] + parts["aux"], total)


class _TwoPart(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.head = nn.Linear(2, 1)


def test_optimizer_groups_and_hyperparameters():
    model = _TwoPart()
    opt = build_optimizer(model, 3e-4)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    assert opt.param_groups[0]["params"][0] is model.backbone.weight
    for group in opt.param_groups:
        assert group["lr"] == 3e-4 and group["weight_decay"] == 0.05
        assert group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8


def test_stage_defaults_and_release_flags():
    pre = config_from_args(["--stage", "pre_train"])
    assert (pre.lr, pre.batch_size, pre.max_iter, pre.warm_up_steps) == (1e-4, 4, 80_000, 1_500)
    assert (pre.eval_iter, pre.save_checkpoint_interval, pre.lr_schedule) == (4_000, 1_000, "poly")
    assert (pre.imsize, pre.train_frames, pre.seed) == (512, 3, 2023)
    assert str(pre.train_root) == "../data/YouTube2SEG/train"
    assert str(pre.val_root) == "../data/DAVIS16/val"
    main = config_from_args(["--stage", "main_train", "-lr", "5e-5", "--resume"])
    assert (main.lr, main.batch_size, main.max_iter, main.warm_up_steps) == (5e-5, 2, 10_000, 0)
    assert (main.eval_iter, main.lr_schedule, main.resume) == (1_000, "constant", True)
    assert str(main.run_dir) == "exp/MTNet/main_train"
    assert main.pretrain_model_path is None  # no default, as in the release
    with pytest.raises(ValueError, match="exactly 3"):
        config_from_args(["--stage", "main_train", "--train_frames", "5"])
    with pytest.raises(ValueError, match="multiple of 64"):
        config_from_args(["--stage", "main_train", "--imsize", "500"])


def test_latest_checkpoint_is_the_highest_iteration(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    for name in ("2_checkpoint.pth", "10_checkpoint.pth", "9_checkpoint.pth", "best.pth"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / ".11_checkpoint.x.tmp.pth").write_bytes(b"")  # an interrupted write
    assert latest_checkpoint(tmp_path) == tmp_path / "10_checkpoint.pth"
    prune_checkpoints(tmp_path, keep=2)
    assert [it for it, _ in list_checkpoints(tmp_path)] == [9, 10]


def test_rng_state_round_trip_through_a_weights_only_file(tmp_path):
    torch.manual_seed(1)
    random.seed(2)
    np.random.seed(3)
    atomic_torch_save({"rng": capture_rng_state()}, tmp_path / "s.pth")
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(7)
    random.seed(7)
    np.random.seed(7)
    restore_rng_state(load_file(tmp_path / "s.pth")["rng"])
    got = (torch.rand(3), random.random(), np.random.rand())
    torch.testing.assert_close(got[0], expected[0])
    assert got[1:] == expected[1:]


def test_frame_iou_counts_both_empty_as_one():
    pred = torch.zeros(3, 1, 4, 4)
    gt = torch.zeros(3, 1, 4, 4)
    pred[1, 0, :2] = 0.9
    gt[1, 0, :1] = 1
    gt[2, 0, 0, 0] = 1
    torch.testing.assert_close(frame_ious(pred, gt), torch.tensor([1.0, 0.5, 0.0]))


class _Oracle(nn.Module):
    """Eval-mode stand-in: the ground truth on frame 0 of each video, empty elsewhere."""

    def __init__(self, data):
        super().__init__()
        self.data = data
        self.calls = 0

    def forward(self, imgs, flows):
        clip = self.data[self.calls]
        self.calls += 1
        out = torch.zeros_like(clip["masks"])
        if clip["start"] == 0:
            out[0] = clip["masks"][0]
        return out


def test_val_first_frame_only_scores_frame_zero(tmp_path):
    root = synthetic_root(tmp_path) / "val"
    all_frames = ValClips(root, 64)
    score = evaluate(_Oracle(all_frames), all_frames, torch.device("cpu"))
    assert score == pytest.approx(np.mean([1 / 4, 1 / 3]))  # squares never empty
    first = ValClips(root, 64, first_clip_only=True)
    assert evaluate(_Oracle(first), first, torch.device("cpu"), first_frame_only=True) == 1.0


def test_val_mask_resize_is_torch_nearest_not_pil(tmp_path):
    # 6 -> 4 px: torch's nearest reads source floor(i * 1.5) = 0, 1, 3, 4; PIL's nearest
    # samples pixel centres, floor((i + 0.5) * 1.5) = 0, 2, 3, 5.
    mask = np.zeros((6, 6), dtype=np.uint8)
    mask[:, [2, 5]] = 255  # columns only PIL reads
    mask[[1, 4], :] = 255  # rows only torch reads
    Image.fromarray(mask).save(tmp_path / "m.png")
    got = load_val_mask(tmp_path / "m.png", 4)
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[[1, 3], :] = 1  # by hand: torch rows 1 and 4
    np.testing.assert_array_equal(got[0].numpy(), expected)
    reference = F.interpolate(
        torch.from_numpy(mask / 255.0)[None, None], size=(4, 4), mode="nearest"
    )
    torch.testing.assert_close(got, (reference[0] > 0.5).float())
    pil = np.asarray(Image.fromarray(mask).resize((4, 4), Image.Resampling.NEAREST)) > 127
    assert not np.array_equal(pil, expected > 0)  # the two rules differ on this mask
    np.testing.assert_array_equal(pil[:, 1], np.ones(4, dtype=bool))  # PIL reads column 2


def test_val_clips_use_torch_nearest_masks(tmp_path):
    root = synthetic_root(tmp_path) / "val"  # 96x80 masks, validated at 64x64
    clip = ValClips(root, 64)[0]
    for i, path in enumerate(sorted((root / "mask" / "v1").iterdir())[:3]):
        grey = torch.from_numpy(np.asarray(Image.open(path).convert("L")) / 255.0).float()
        ref = F.interpolate(grey[None, None], size=(64, 64), mode="nearest")[0] > 0.5
        torch.testing.assert_close(clip["masks"][i], ref.float())


class _AutocastSpy(nn.Module):
    """Records whether autocast was on for the CPU during each forward."""

    def __init__(self):
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, imgs, flows):
        self.seen.append(torch.is_autocast_enabled("cpu"))
        return torch.zeros(imgs.shape[0] * imgs.shape[1], 1, *imgs.shape[-2:])


def test_validation_runs_under_autocast_when_mixed_precision_is_on(tmp_path):
    # The trainer passes use_amp on CUDA unless --no_amp; the CPU shows the code path.
    data = ValClips(synthetic_root(tmp_path) / "val", 64, max_videos=1)
    spy = _AutocastSpy()
    evaluate(spy, data, torch.device("cpu"), use_amp=True)
    evaluate(spy, data, torch.device("cpu"))
    assert spy.seen == [True] * len(data) + [False] * len(data)
