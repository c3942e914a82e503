"""The bundled sample's ground truth is in the scorers' layout: the command that `make demo`
prints and the docs give scores the sample's masks, also with other results beside them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from util.sample import NUM_FRAMES, mask_dir

REPO = Path(__file__).resolve().parent.parent
SCORE = "test_scripts/test_for_davis.py --gt_path asset/sample/gt"


def scoring_command(text: str) -> list[str]:
    """The scorer's path and arguments in the one line of ``text`` that scores the sample
    (quotes of an ``echo`` dropped)."""
    lines = [line for line in text.splitlines() if SCORE in line]
    assert len(lines) == 1, lines
    return [word.strip("\"'") for word in lines[0][lines[0].index(SCORE) :].split()]


def test_the_sample_ground_truth_is_one_video_of_named_frames() -> None:
    assert mask_dir() == REPO / "asset" / "sample" / "gt" / "sample"
    names = sorted(p.name for p in mask_dir().iterdir())
    assert names == [f"{i:05d}.png" for i in range(NUM_FRAMES)]


def test_make_demo_and_the_docs_give_the_same_scoring_command() -> None:
    make = scoring_command((REPO / "Makefile").read_text(encoding="utf-8"))
    docs = scoring_command((REPO / "docs" / "EVALUATION.md").read_text(encoding="utf-8"))
    assert make == docs
    assert make[make.index("--result_path") + 1] == "output/MTNet/UVOS_videos"
    assert make[make.index("--videos") + 1 :] == ["sample"]


def test_the_command_scores_the_sample_beside_other_results(tmp_path: Path) -> None:
    results = tmp_path / "output" / "MTNet" / "UVOS_videos"
    shutil.copytree(mask_dir(), results / "sample")  # perfect masks ...
    wrong = results / "sample" / "00003.png"
    cv2.imwrite(str(wrong), 255 - cv2.imread(str(wrong), cv2.IMREAD_GRAYSCALE))  # ... but one
    (results / "other").mkdir()  # another --video result, without ground truth
    cv2.imwrite(str(results / "other" / "00000.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "asset" / "sample").mkdir(parents=True)
    shutil.copytree(mask_dir(), tmp_path / "asset" / "sample" / "gt" / "sample")

    args = scoring_command((REPO / "Makefile").read_text(encoding="utf-8"))
    script = REPO / args[0]
    done = subprocess.run(
        [sys.executable, str(script), *args[1:], "--json", "scores.json", "--workers", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    # By hand: frames 1-31 are scored (not frame 0). The inverted frame has J = 0 and F = 1
    # (a mask and its complement differ from their neighbours at the same pixels, so their
    # boundaries are the same); the other 30 are perfect.
    # J recall leaves out the last frame too: 29 of 30 above 0.5. J decay: the 30 values of
    # frames 1-30 fall into bins by the breakpoints 0, 7, 15, 22, 29; frame 3 lies in bin 0
    # (mean 7/8), bin 3 is perfect: 7/8 - 1.
    j_mean = 30 / 31
    expected = {
        "J": {"mean": j_mean, "recall": 29 / 30, "decay": -1 / 8},
        "F": {"mean": 1.0, "recall": 1.0, "decay": 0.0},
    }
    assert list(scores) == ["J", "F", "JF", "videos"]
    assert list(scores["videos"]) == ["sample"]  # the result without ground truth left out
    for got in (scores, scores["videos"]["sample"]):  # one video: its scores are the mean
        for measure, values in expected.items():
            assert got[measure] == pytest.approx(values, abs=1e-12), measure
    assert scores["JF"] == pytest.approx((j_mean + 1.0) / 2, abs=1e-12)
    assert re.findall(r"^J&F: .*$", done.stdout, flags=re.M) == ["J&F: 0.9839"], done.stdout
    assert "other" not in done.stdout
