"""Training learns without anyone's weights: from random weights, a few steps on synthetic
clips of the sample's kind lower the loss and raise the IoU on a held-out clip above the
untrained network's. The test-sized network learns here; docs/OWN_VIDEOS.md gives the
paper's network's run, J >= 0.7."""

from __future__ import annotations

import re

import torch

from dataset.prepare import PrepareOptions
from dataset.prepare_folder import prepare_folder
from dataset.val_videos import ValClips
from model import build_mtnet
from tests.train_helpers import tiny_config
from training.rng_state import seed_everything
from training.trainer import train
from training.validate import evaluate
from util.sample import write_clips

STEPS = 48
WINDOW = 12


def test_random_weights_learn_the_disc(tmp_path):
    src = tmp_path / "src"
    write_clips(src, 6, num_frames=8, size=(64, 64))
    write_clips(src, 1, num_frames=6, size=(64, 64), first=1000)  # held out
    prepare_folder(src, tmp_path / "data", "toy", PrepareOptions(progress=False), ["clip1000"])
    root = tmp_path / "data" / "toy"
    cfg = tiny_config(
        root, tmp_path / "exp", "main_train", train_dataset="train", val_dataset="val",
        lr="1e-3", max_iter=STEPS, eval_iter=STEPS, print_every=WINDOW,
        save_checkpoint_interval=STEPS, log_image_interval=STEPS,
    )  # fmt: skip
    val = ValClips(root / "val", imsize=64)
    seed_everything(cfg.seed)  # the trainer's initial weights
    untrained = evaluate(build_mtnet(cfg.encoder_name, device="cpu"), val, torch.device("cpu"))

    result = train(cfg)

    losses = [
        float(m)
        for m in re.findall(r" loss ([0-9.]+) ", (result.run_dir / "train.log").read_text())
    ]
    assert len(losses) == STEPS // WINDOW
    assert losses[-1] < 0.7 * losses[0], losses  # the mean loss of the last steps vs the first
    trained = evaluate(result.model, val, torch.device("cpu"))
    assert result.best_iou == trained
    assert trained > untrained + 0.1, (untrained, trained)
