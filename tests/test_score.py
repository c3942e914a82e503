"""python -m test_scripts.score: the protocol chosen from the ground truth alone, the VSOD
``<video>/GT/`` layout, ``--videos`` and the error lines."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_scripts import davis_metrics as dm
from test_scripts.score import main as score_main
from test_scripts.test_vsod import metrics as vm
from tests.test_eval_davis import error_of, make_dataset, ref_boundary_f, toy_videos, write_mask
from tests.test_eval_vsod import expected_row, make_tree

REPO = Path(__file__).resolve().parents[1]


def score(gt: Path, res: Path, capsys, *extra: str) -> tuple[str, dict]:
    """Run the scorer; its first output line (the protocol) and its JSON."""
    out = gt.parent / "scores.json"
    argv = ["--gt_path", str(gt), "--result_path", str(res), "--workers", "1", "--json", str(out)]
    assert score_main([*argv, *extra]) == 0
    return capsys.readouterr().out.splitlines()[0], json.loads(out.read_text())


def hand_scores(pred: list[np.ndarray], gt: list[np.ndarray], frames) -> tuple[list, list]:
    """J by the toolkit's formula and F by the per-pixel reference, frame by frame."""
    j = [dm.jaccard(pred[i], gt[i]) for i in frames]
    return j, [ref_boundary_f(pred[i], gt[i]) for i in frames]


def check_dense(data: dict, gt: dict, pred: dict) -> None:
    """Every video's J and F statistics over all frames but the first, by hand."""
    for video in data["videos"]:
        j, f = hand_scores(pred[video], gt[video], range(1, len(gt[video])))
        assert data["videos"][video]["J"] == pytest.approx(dm.sequence_statistics([np.nan, *j]))
        assert data["videos"][video]["F"] == pytest.approx(dm.sequence_statistics([np.nan, *f]))


def test_a_fully_annotated_set_is_dense_whatever_the_result_folder_holds(tmp_path, capsys, caplog):
    gt, pred = toy_videos()
    gt_dir, res_dir = make_dataset(tmp_path, gt, "gt"), make_dataset(tmp_path, pred, "res")
    expected_line = (
        "protocol: dense (DAVIS-2016): no gap in the mask numbers of any scored video "
        "(2 videos, 12 masks); the first frame of each video is not scored"
    )
    line, data = score(gt_dir, res_dir, capsys)
    assert line == expected_line
    assert data["protocol"] == "dense" and set(data["J"]) == {"mean", "recall", "decay"}
    check_dense(data, gt, pred)

    # An extra predicted frame (no ground truth): still dense; it is named and not scored.
    write_mask(res_dir / "bear" / "00006.png", gt["bear"][0])
    with caplog.at_level(logging.WARNING):
        line, extra = score(gt_dir, res_dir, capsys)
    assert line == expected_line and extra == data
    assert f"{res_dir / 'bear'}: predictions without a ground-truth frame" in caplog.text
    assert "(first: 00006.png)" in caplog.text

    # A missing prediction of the first frame: still dense, and that frame is not scored.
    (res_dir / "bear" / "00000.png").unlink()
    assert score(gt_dir, res_dir, capsys) == (expected_line, data)

    # A missing prediction of a scored frame: still dense; the run stops naming it, or
    # counts it as an empty mask with --missing_as_empty.
    (res_dir / "camel" / "00003.png").unlink()
    argv = ["--gt_path", str(gt_dir), "--result_path", str(res_dir), "--workers", "1"]
    assert score_main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [expected_line]
    (err,) = captured.err.strip().splitlines()
    assert err.startswith("error: no prediction") and "camel/00003.png" in err
    line, empty = score(gt_dir, res_dir, capsys, "--missing_as_empty")
    assert line == expected_line
    pred["camel"][3] = np.zeros_like(pred["camel"][3])
    check_dense(empty, gt, pred)


def test_a_gapped_set_is_sparse_even_when_only_annotated_frames_were_predicted(tmp_path, capsys):
    gt, pred = toy_videos(1, n=8)
    gt_dir, res_dir = make_dataset(tmp_path, gt, "gt"), make_dataset(tmp_path, pred, "res")
    for video in gt:  # annotations (and now predictions) of frames 0, 3 and 7 only
        for i in (1, 2, 4, 5, 6):
            (gt_dir / video / f"{i:05d}.png").unlink()
            (res_dir / video / f"{i:05d}.png").unlink()
    line, data = score(gt_dir, res_dir, capsys)
    assert line == (
        "protocol: sparse (FBMS): gaps in the mask numbers of 2 of 2 videos (bear: 3 masks, "
        "none numbered 1 between 00000.png and 00003.png); the annotated frames are scored"
    )
    assert data["protocol"] == "sparse" and set(data["J"]) == {"mean"}
    for video in gt:
        j, f = hand_scores(pred[video], gt[video], (0, 3, 7))  # the first frame counts too
        assert data["videos"][video]["J"] == {"mean": pytest.approx(np.mean(j))}
        assert data["videos"][video]["F"] == {"mean": pytest.approx(np.mean(f))}


def test_a_mixed_set_is_sparse_and_videos_restricts_the_choice_and_the_scores(tmp_path, capsys):
    gt, pred = toy_videos(2)
    gt_dir, res_dir = make_dataset(tmp_path, gt, "gt"), make_dataset(tmp_path, pred, "res")
    for i in (2, 3):
        (gt_dir / "camel" / f"{i:05d}.png").unlink()  # camel: frames 0, 1, 4, 5
    line, data = score(gt_dir, res_dir, capsys)
    assert line == (
        "protocol: sparse (FBMS): gaps in the mask numbers of 1 of 2 videos (camel: 4 masks, "
        "none numbered 2 between 00001.png and 00004.png); the annotated frames are scored, "
        "also those of the 1 videos without a gap (score them alone with --videos for the "
        "dense protocol)"
    )
    j, _ = hand_scores(pred["bear"], gt["bear"], range(6))  # bear's first frame too
    assert data["videos"]["bear"]["J"]["mean"] == pytest.approx(np.mean(j))

    # --videos bear: only bear's ground truth decides (dense), only bear is scored
    line, alone = score(gt_dir, res_dir, capsys, "--videos", "bear")
    assert line.startswith("protocol: dense (DAVIS-2016)") and "(1 videos, 6 masks)" in line
    assert set(alone["videos"]) == {"bear"}
    check_dense(alone, gt, pred)
    # the same as a data set that holds bear alone
    only = tmp_path / "only"
    shutil.copytree(gt_dir / "bear", only / "gt" / "bear")
    shutil.copytree(res_dir / "bear", only / "res" / "bear")
    assert score(only / "gt", only / "res", capsys) == (line, alone)
    for m in ("J", "F"):
        assert alone[m] == alone["videos"]["bear"][m]

    # --videos camel: sparse, and camel's annotated frames alone
    line, camel = score(gt_dir, res_dir, capsys, "--videos", "camel")
    assert line.startswith("protocol: sparse (FBMS): gaps in the mask numbers of 1 of 1 ")
    j, f = hand_scores(pred["camel"], gt["camel"], (0, 1, 4, 5))
    assert camel["J"]["mean"] == pytest.approx(np.mean(j))
    assert camel["F"]["mean"] == pytest.approx(np.mean(f))
    # a result folder of a video not scored does not matter to --videos
    (res_dir / "bear").rename(tmp_path / "bear_results")
    assert score(gt_dir, res_dir, capsys, "--videos", "camel") == (line, camel)


@pytest.mark.parametrize("vsod_folder", [False, True])
def test_vsod_ground_truth_in_gt_subfolders(tmp_path, capsys, vsod_folder):
    frames = make_tree(tmp_path, gt_subfolder=True, vsod_folder=vsod_folder)
    gt = tmp_path / "G" / "DAVIS16"
    res = tmp_path / "P" / "MTNet" / ("VSOD" if vsod_folder else "") / "DAVIS16"
    line, data = score(gt, res, capsys, "--task", "VSOD")
    assert line.startswith("protocol: dense (DAVIS-2016)") and "(2 videos, 10 masks)" in line
    expected = expected_row(frames, "DAVIS16", slice(1, -1))  # not the first and last
    assert {k: data[k] for k in expected} == pytest.approx(expected)

    (gt / "v2" / "GT" / "00002.png").unlink()  # v2 annotated at 0, 1, 3, 4
    line, data = score(gt, res, capsys, "--task", "VSOD")
    assert line.startswith(
        "protocol: sparse (FBMS): gaps in the mask numbers of 1 of 2 videos (v2: 4 masks, "
        "none numbered 2 between 00001.png and 00003.png)"
    )
    videos = []
    for video, kept in (("v1", range(5)), ("v2", (0, 1, 3, 4))):
        v = vm.VideoScores(video)
        for i in kept:  # every annotated frame, the first and last included
            v.add(vm.frame_scores(*frames[("DAVIS16", video)][i]))
        videos.append(v)
    expected = vm.dataset_scores(videos)
    assert {k: data[k] for k in expected} == pytest.approx(expected)

    line, data = score(gt, res, capsys, "--task", "VSOD", "--videos", "v1")
    assert line.startswith("protocol: dense (DAVIS-2016)") and "(1 videos, 5 masks)" in line
    v = vm.VideoScores("v1")
    for pred, truth in frames[("DAVIS16", "v1")][1:-1]:
        v.add(vm.frame_scores(pred, truth))
    expected = vm.dataset_scores([v])
    assert {k: data[k] for k in expected} == pytest.approx(expected)


@pytest.mark.parametrize(
    ("names", "gap"),
    [
        (["00000", "00001", "00002"], None),  # DAVIS
        (["img9", "img10", "img11"], None),  # numbers, not text, follow each other
        (["cars1_01", "cars1_20", "cars1_40"], "none numbered 2 between cars1_01.png"),  # FBMS
        (["00005", "00006", "00007"], None),  # annotated from frame 5 on, every frame
        (["00000", "00008", "00016"], "none numbered 1 between 00000.png and 00008.png"),
        (["00003"], "a single mask"),
        (["key"], "a single mask"),  # one mask needs no number to be sparse
    ],
)
def test_what_counts_as_a_gap(tmp_path, capsys, names, gap):
    mask = np.ones((8, 8), dtype=bool)
    for name in names:
        write_mask(tmp_path / "gt" / "v" / f"{name}.png", mask)
        write_mask(tmp_path / "res" / "v" / f"{name}.png", mask)
    line, _ = score(tmp_path / "gt", tmp_path / "res", capsys)
    if gap is None:
        assert line.startswith("protocol: dense (DAVIS-2016)")
    else:
        assert line.startswith("protocol: sparse (FBMS)") and gap in line


def test_error_lines(tmp_path, capsys):
    gt, pred = toy_videos()
    gt_dir, res_dir = make_dataset(tmp_path, gt, "gt"), make_dataset(tmp_path, pred, "res")

    def error(g: Path, r: Path, *extra: str) -> str:
        argv = ["--gt_path", str(g), "--result_path", str(r), "--workers", "1", *extra]
        return error_of(score_main, argv, capsys)

    msg = error(tmp_path / "nope", res_dir)
    assert msg == f"error: ground-truth folder {tmp_path / 'nope'} is not a folder"
    msg = error(gt_dir, tmp_path / "absent")
    assert f"result folder {tmp_path / 'absent'} is not a folder" in msg
    (tmp_path / "empty" / "bear").mkdir(parents=True)
    msg = error(tmp_path / "empty", res_dir)
    assert f"no video folders in ground-truth folder {tmp_path / 'empty'}" in msg
    assert "none holds a mask" in msg
    msg = error(gt_dir, res_dir, "--videos", "bear", "horse")
    assert msg.startswith("error: --videos: no ground truth for horse in ") and str(gt_dir) in msg
    shutil.rmtree(res_dir / "camel")
    msg = error(gt_dir, res_dir)
    assert "camel" in msg and f"no result folder in {res_dir}" in msg
    (res_dir / "extra").mkdir()
    assert f"result folder {res_dir / 'extra'} has no ground truth" in error(gt_dir, res_dir)

    # mask names without a frame number cannot tell dense from sparse: say so, take --protocol
    for i, name in enumerate(("first", "second")):
        write_mask(tmp_path / "named" / "gt" / "v" / f"{name}.png", gt["bear"][i])
        write_mask(tmp_path / "named" / "res" / "v" / f"{name}.png", pred["bear"][i])
    named = tmp_path / "named"
    msg = error(named / "gt", named / "res")
    assert msg.startswith(f"error: cannot tell whether {named / 'gt' / 'v'} is densely annotated")
    assert msg.endswith("pass --protocol dense or sparse")
    line, data = score(named / "gt", named / "res", capsys, "--protocol", "sparse")
    assert line == "protocol: sparse (as asked)"
    j, _ = hand_scores(pred["bear"], gt["bear"], (0, 1))
    assert data["J"]["mean"] == pytest.approx(np.mean(j))

    # two names of one frame number: the line names both
    for i, name in enumerate(("1", "01")):
        write_mask(tmp_path / "twice" / "gt" / "v" / f"{name}.png", gt["bear"][i])
        write_mask(tmp_path / "twice" / "res" / "v" / f"{name}.png", pred["bear"][i])
    msg = error(tmp_path / "twice" / "gt", tmp_path / "twice" / "res")
    assert "(e.g. 01.png and 1.png, both frame 1); pass --protocol dense or sparse" in msg


def test_module_exit_status_and_one_line(tmp_path):
    """``python -m test_scripts.score`` with a missing folder: status 2, one line, no traceback."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "test_scripts.score",
            "--gt_path",
            str(tmp_path / "gt"),
            "--result_path",
            str(tmp_path),
        ],  # fmt: skip
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: ground-truth folder {tmp_path / 'gt'} is not a folder"
    ]
