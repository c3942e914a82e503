"""The path of docs/OWN_VIDEOS.md at small sizes: the bundled sample (sparse masks) and
synthetic clips -> dataset.prepare folder -> train.py by path -> test.py by path -> score.

Also the pieces that path relies on: the training sampler and validation on sparse masks,
dataset paths relative to the working folder, the results folder named after the data set
and the scorer's choice of protocol.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import train as train_script
from dataset.prepare import main as prepare_main
from dataset.registry import resolve_benchmark
from dataset.train_clips import TrainClips
from dataset.val_videos import ValClips
from test_scripts.score import main as score_main
from tests.conftest import load_script
from training.validate import evaluate
from util.image import write_image
from util.sample import SAMPLE_DIR, mask_dir, write_clips

SAMPLE_MASKS = (0, 8, 16, 24, 31)  # the sample video's annotated frames (sparse)


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Path:
    """A working folder with ``own_src/`` laid out as the walkthrough makes it, and
    ``data/mine/`` prepared from it (the sample validates)."""
    work = tmp_path_factory.mktemp("work")
    src = work / "own_src"
    write_clips(src, 3, num_frames=6, size=(64, 64), mask_every=1)
    shutil.copy(SAMPLE_DIR / "sample.mp4", src / "frames" / "sample.mp4")
    for t in SAMPLE_MASKS:
        name = f"{t:05d}.png"
        (src / "masks" / "sample").mkdir(parents=True, exist_ok=True)
        shutil.copy(mask_dir() / name, src / "masks" / "sample" / name)
    argv = ["folder", "--src", str(src), "--out", str(work / "data"), "--name", "mine",
            "--val_videos", "sample", "--no_progress"]  # fmt: skip
    assert prepare_main(argv) == 0
    return work


def test_sparse_training_clips_come_from_annotated_frames_with_their_own_flows(own):
    data = own / "data" / "mine"
    clips = TrainClips(data / "train", imsize=64, seed=0)
    assert [len(v) for v in clips.videos] == [6, 6, 6]  # dense: every frame, as before
    val = TrainClips(data / "val", imsize=64, seed=0)  # the sample: 5 of 32 frames annotated
    (video,) = val.videos
    assert [p.stem for p in video.frames] == [f"{t:05d}" for t in SAMPLE_MASKS]
    assert [p.stem for p in video.masks] == [f"{t:05d}" for t in SAMPLE_MASKS]
    # each frame's own flow (to the next frame), the last one the copy made for frame 31
    assert [p.stem for p in video.flows] == [f"{t:05d}" for t in SAMPLE_MASKS]
    item = val[0]
    assert item["imgs"].shape == (3, 3, 64, 64) and item["masks"].shape == (3, 1, 64, 64)


def test_validation_runs_every_frame_and_scores_the_annotated_ones(own):
    data = ValClips(own / "data" / "mine" / "val", imsize=64)
    assert len(data.clips) == 11  # 32 frames in clips of 3
    scored = torch.cat([data[i]["scored"] for i in range(len(data))])
    assert scored.nonzero().flatten().tolist() == list(SAMPLE_MASKS)

    class Constant(torch.nn.Module):
        """Predicts the ground truth of frame 0 everywhere: IoU 1 there, less elsewhere."""

        backbone = torch.nn.Identity()

        def forward(self, imgs, flows):
            first = data[0]["masks"][0]
            return first.expand(imgs.shape[1], 1, *first.shape[-2:]).clone()

    iou = evaluate(Constant(), data, torch.device("cpu"))
    masks = torch.cat([data[i]["masks"] for i in range(len(data))])[list(SAMPLE_MASKS)]
    pred, gt = masks[0] > 0.5, masks > 0.5
    expected = ((pred & gt).flatten(1).sum(1) / (pred | gt).flatten(1).sum(1)).mean()
    assert iou == pytest.approx(float(expected))  # the five annotated frames, no others
    first_only = evaluate(Constant(), data, torch.device("cpu"), first_frame_only=True)
    assert first_only == 1.0


def test_split_folder_is_named_after_the_data_set(own):
    assert resolve_benchmark(str(own / "data" / "mine" / "val"), "../data").name == "mine"


def test_walkthrough_prepare_finetune_test_score(own, monkeypatch, capsys):
    monkeypatch.chdir(own)  # dataset paths relative to the working folder
    argv = ["--stage", "main_train", "--train_dataset", "data/mine/train", "--val_dataset",
            "data/mine/val", "--imsize", "64", "--batch_size", "1", "--max_iter", "2",
            "--eval_iter", "2", "--save_checkpoint_interval", "2", "--print_every", "1",
            "--log_image_interval", "2", "--num_workers", "0", "--device", "cpu",
            "--exp", "exp_own", "-lr", "1e-5"]  # fmt: skip
    assert train_script.main(argv) == 0
    run = own / "exp_own" / "MTNet" / "main_train"
    log_text = (run / "train.log").read_text()
    assert "3 training videos" in log_text and "1 validation videos" in log_text
    assert "main_train starts from random weights" in log_text
    assert (run / "best.pth").is_file()

    test_argv = ["--test_model", str(run / "best.pth"), "--test_dataset", "data/mine/val",
                 "--output_dir", "output_own", "--device", "cpu", "--num_workers", "0",
                 "--test_length", "3", "--test_size", "64", "64"]  # fmt: skip
    assert load_script("test.py").main(test_argv) == 0
    results = own / "output_own" / "MTNet" / "UVOS" / "mine" / "sample"
    assert len(list(results.glob("*.png"))) == 32  # every frame, at the video's size

    capsys.readouterr()
    gt = own / "data" / "mine" / "val" / "mask"
    assert score_main(["--gt_path", str(gt), "--result_path", str(results.parent)]) == 0
    out = capsys.readouterr().out
    assert (
        "protocol: sparse (FBMS): gaps in the mask numbers of 1 of 1 videos (sample: 5 masks, "
        "none numbered 1 between 00000.png and 00008.png); the annotated frames are scored"
    ) in out


def test_score_picks_dense_when_every_frame_is_annotated(tmp_path, capsys):
    gt, res = tmp_path / "gt" / "v", tmp_path / "res" / "v"
    rng = np.random.default_rng(0)
    for t in range(3):
        mask = (rng.random((16, 16)) > 0.5).astype(np.uint8) * 255
        write_image(gt / f"{t:05d}.png", mask)
        write_image(res / f"{t:05d}.png", mask)
    argv = ["--gt_path", str(gt.parent), "--result_path", str(res.parent), "--workers", "1"]
    assert score_main(argv) == 0
    out = capsys.readouterr().out
    assert "protocol: dense (DAVIS-2016): no gap in the mask numbers of any scored video" in out
    assert "(1 videos, 3 masks)" in out
    assert "J(D)" in out  # the dense table: mean, recall and decay
    assert score_main([*argv, "--task", "VSOD"]) == 0
    assert "MAE" in capsys.readouterr().out


def test_dataset_flag_error_names_both_places(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--stage", "main_train", "--train_dataset", "mine/train", "--root", "data",
            "--exp", str(tmp_path / "exp"), "--device", "cpu"]  # fmt: skip
    assert train_script.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert (
        f"--train_dataset mine/train: no frame folder in the dataset root {Path('data/mine/train/frame')} nor mine/train/frame (from the working folder {tmp_path})"
        in err[0]
    )  # noqa: E501
    assert not (tmp_path / "exp").exists()
