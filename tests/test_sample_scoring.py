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
    assert re.search(r"J&F: 0\.9\d+", done.stdout), done.stdout
    text = json.dumps(scores)
    assert "other" not in text
    assert "sample" in text
