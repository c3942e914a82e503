"""A training run's before/after picture: one frame with the masks before and after training.

The masks are those of the network as training started (random weights of the same variant,
the run's ``--seed``) and as it ended.

    python -m inference.before_after --video data/toy/val --name clip1000 --frame 6 \\
        --model exp/toy/main_train/best.pth --size 64 --out toy_before_after.jpg

Panels, left to right: before, after, and the ground truth when the frame has a mask.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from util.cli import ArgumentParser
from util.errors import InputError, exit_status
from util.fileio import check_output_file

MIN_PANEL_WIDTH = 256  # pixels


def masks_of(model, frames: list[np.ndarray], flows: list[np.ndarray], size: int) -> list:
    """The UVOS masks of ``frames`` (uint8 ``[h, w]``) as test.py makes them at ``size``."""
    from .predictor import MTNetPredictor

    predictor = MTNetPredictor(model, "UVOS", (size, size), clip_length=9, device="cpu")
    return list(predictor.segment(frames, flows))


def before_after(
    split_dir: Path, name: str, index: int, weights: Path, size: int, seed: int
) -> np.ndarray:
    """The picture (RGB ``[h, 2w or 3w, 3]`` uint8) for frame ``index`` of video ``name``
    of a prepared split folder (``{frame,flow,mask}/<video>/``)."""
    from dataset.train_clips import pair_video
    from model import build_mtnet
    from util.image import read_mask, read_rgb_array

    from .visualize import compose

    video = pair_video(split_dir, name)
    if not 0 <= index < len(video):
        raise InputError(f"--frame {index}: video {name} has {len(video)} frames")
    frames = [read_rgb_array(p) for p in video.frames]
    flows = [read_rgb_array(p) for p in video.flows]
    trained = build_mtnet(None, weights=weights, device="cpu")  # the variant read off the file
    untrained = build_mtnet(trained.encoder_name, seed=seed, device="cpu", untrained_ok=True)
    before = masks_of(untrained, frames, flows, size)
    after = masks_of(trained, frames, flows, size)
    gt = read_mask(video.masks[index]) if video.masks[index] else None
    frame = frames[index]
    scale = max(1, -(-MIN_PANEL_WIDTH // frame.shape[1]))  # small frames: room for the labels
    if scale > 1:
        frame, before, after, gt = (
            None if x is None else np.repeat(np.repeat(x, scale, axis=0), scale, axis=1)
            for x in (frame, before[index], after[index], gt)
        )
    else:
        before, after = before[index], after[index]
    panels = [compose(frame, before, "before"), compose(frame, after, "after", gt=gt)]
    return np.concatenate(panels, axis=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m inference.before_after", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--video", type=Path, required=True, help="a split folder: data/NAME/val")
    parser.add_argument("--name", required=True, help="the video's name")
    parser.add_argument("--frame", type=int, default=0, help="frame index (default: 0)")
    parser.add_argument("--model", type=Path, required=True, help="the trained model file")
    parser.add_argument("--size", type=int, default=512, help="test size (square)")
    parser.add_argument("--seed", type=int, default=2023, help="the run's --seed")
    parser.add_argument("--out", type=Path, required=True, help="the picture (.png or .jpg)")
    args = parser.parse_args(argv)

    def work() -> None:
        from util.image import write_image

        check_output_file(args.out, "--out")
        picture = before_after(args.video, args.name, args.frame, args.model, args.size, args.seed)
        write_image(args.out, picture)
        print(args.out)

    return exit_status("before_after", work)


if __name__ == "__main__":
    sys.exit(main())
