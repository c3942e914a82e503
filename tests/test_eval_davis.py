"""DAVIS-style UVOS evaluation (test_scripts/davis_metrics.py) against DESIGN.md §9."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from test_scripts import davis_metrics as dm
from test_scripts import test_for_davis, test_for_fbms, test_for_longvideo, test_for_ytb_obj
from test_scripts.evalio import EvalError, read_grey
from tests.conftest import DAVIS_VAL

REPO = Path(__file__).resolve().parents[1]
DAVIS_MASKS = DAVIS_VAL / "mask"
needs_davis = pytest.mark.usefixtures("davis_val")  # skipped when the shared data is absent


def write_mask(path: Path, mask: np.ndarray) -> None:
    """Save a boolean mask as a 0/255 grey PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), mask.astype(np.uint8) * 255)


def square(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


# ---------------------------------------------------------------------------------------
# Plain per-pixel references of the toolkit's definitions


def ref_boundary_map(m: np.ndarray) -> np.ndarray:
    h, w = m.shape
    b = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            if y == h - 1 and x == w - 1:
                continue
            if y == h - 1:
                b[y, x] = m[y, x] != m[y, x + 1]
            elif x == w - 1:
                b[y, x] = m[y, x] != m[y + 1, x]
            else:
                b[y, x] = (
                    m[y, x] != m[y, x + 1] or m[y, x] != m[y + 1, x] or m[y, x] != m[y + 1, x + 1]
                )
    return b


def ref_boundary_f(pred: np.ndarray, gt: np.ndarray) -> float:
    bp, bg = ref_boundary_map(pred), ref_boundary_map(gt)
    r = math.ceil(0.008 * math.sqrt(pred.shape[0] ** 2 + pred.shape[1] ** 2))
    pts_p, pts_g = np.argwhere(bp), np.argwhere(bg)

    def matched(src: np.ndarray, dst: np.ndarray) -> int:
        return sum(bool(len(dst)) and bool(((dst - s) ** 2).sum(1).min() <= r * r) for s in src)

    if len(pts_p) == 0 or len(pts_g) == 0:
        prec, rec = float(len(pts_g) == 0), float(len(pts_p) == 0)
    else:
        prec, rec = matched(pts_p, pts_g) / len(pts_p), matched(pts_g, pts_p) / len(pts_g)
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


# ---------------------------------------------------------------------------------------
# J and F on hand-made masks


def test_jaccard_hand_worked():
    gt = square(10, 10, 2, 6, 2, 6)  # 16 px
    pred = square(10, 10, 4, 8, 4, 8)  # 16 px, overlap 2×2 = 4
    assert dm.jaccard(pred, gt) == pytest.approx(4 / 28)
    assert dm.jaccard(gt, gt) == 1.0
    empty = np.zeros((10, 10), dtype=bool)
    assert dm.jaccard(empty, empty) == 1.0  # both empty
    assert dm.jaccard(empty, gt) == 0.0
    full = np.ones((10, 10), dtype=bool)
    assert dm.jaccard(full, full) == 1.0
    assert dm.jaccard(full, gt) == pytest.approx(16 / 100)


def test_boundary_map_sits_on_top_left_side_and_ignores_border():
    m = square(5, 6, 1, 3, 2, 4)  # rows 1-2, cols 2-3
    expected = np.zeros((5, 6), dtype=bool)
    # row 0: pixels whose lower or lower-right neighbour is in the square: cols 1..3
    expected[0, 1:4] = True
    # rows 1-2: left neighbour col 1 (differs right/lower-right), the square's own right
    # column (differs from its right neighbour) and row 2 (differs from the row below)
    expected[1, [1, 3]] = True
    expected[2, 1:4] = True
    np.testing.assert_array_equal(dm.boundary_map(m), expected)
    full = np.ones((4, 4), dtype=bool)
    assert not dm.boundary_map(full).any()  # the image border makes no boundary


@pytest.mark.parametrize("seed", range(4))
def test_boundary_map_matches_per_pixel_definition(seed):
    rng = np.random.default_rng(seed)
    m = rng.random((13, 17)) > 0.6
    m[-1, -1] = not m[-2, -2]  # bottom-right differs: still never boundary
    np.testing.assert_array_equal(dm.boundary_map(m), ref_boundary_map(m))


def test_tolerance_radius_and_disk():
    assert dm.tolerance_radius(480, 854) == 8
    assert dm.tolerance_radius(10, 10) == 1
    assert dm.disk_kernel(8).sum() == 197
    from skimage.morphology import disk

    for r in (1, 3, 8):
        np.testing.assert_array_equal(dm.disk_kernel(r), disk(r).astype(np.uint8))


def test_boundary_f_hand_worked():
    # 10×10 frame: r = ceil(0.008·√200) = 1, so the disk is a plus of 5 pixels.
    gt = square(10, 10, 3, 6, 3, 6)  # 3×3 square, rows and columns 3-5
    ring = square(10, 10, 2, 6, 2, 6) & ~square(10, 10, 3, 5, 3, 5)
    np.testing.assert_array_equal(dm.boundary_map(gt), ring)  # 12 pixels: box rows/cols 2-5
    assert dm.boundary_f(gt, gt) == 1.0
    # Shifted right by 1: both 12-pixel rings lie within 1 px of each other: F = 1.
    assert dm.boundary_f(square(10, 10, 3, 6, 4, 7), gt) == 1.0
    # By 2 (ring cols 4-7): 3 + 3 pixels of the top and bottom rows and the 2 of the near
    # side match, on both sides: P = R = 8/12.
    assert dm.boundary_f(square(10, 10, 3, 6, 5, 8), gt) == pytest.approx(2 / 3)
    # By 3 (ring cols 5-8): 2 + 2 of the rows and the shared column: P = R = 6/12.
    assert dm.boundary_f(square(10, 10, 3, 6, 6, 9), gt) == pytest.approx(0.5)
    assert dm.jaccard(square(10, 10, 3, 6, 6, 9), gt) == 0.0
    assert dm.jaccard(square(10, 10, 3, 6, 4, 7), gt) == pytest.approx(6 / 12)


def test_boundary_f_empty_conventions():
    empty = np.zeros((10, 10), dtype=bool)
    full = np.ones((10, 10), dtype=bool)
    gt = square(10, 10, 3, 6, 3, 6)
    assert dm.boundary_f(empty, empty) == 1.0  # no boundaries: P = R = 1
    assert dm.boundary_f(full, full) == 1.0  # all foreground: no boundary either
    assert dm.boundary_f(empty, gt) == 0.0  # P = 1, R = 0
    assert dm.boundary_f(gt, empty) == 0.0  # P = 0, R = 1
    assert dm.boundary_f(full, gt) == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_boundary_f_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    h, w = 90, 130  # r = ceil(0.008·158) = 2
    gt = cv2.GaussianBlur(rng.random((h, w)), (0, 0), 6) > 0.5
    pred = np.roll(gt, (seed + 1, -2 * seed), axis=(0, 1)) ^ (rng.random((h, w)) > 0.995)
    assert dm.tolerance_radius(h, w) == 2
    assert dm.boundary_f(pred, gt) == pytest.approx(ref_boundary_f(pred, gt), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_frame_jf_on_the_union_box_equals_full_frame(seed):
    rng = np.random.default_rng(seed)
    h, w = 120, 170  # r = 2 for the frame; the box is smaller
    gt = np.zeros((h, w), dtype=bool)
    y, x = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 20))
    gt[y : y + int(rng.integers(5, 60)), x : x + int(rng.integers(5, 80))] = True
    if seed % 2:  # touch the bottom-right corner of the image
        gt[-7:, -9:] = True
    pred = np.roll(gt, (int(rng.integers(-4, 5)), int(rng.integers(-4, 5))), axis=(0, 1))
    pred ^= rng.random((h, w)) > 0.998
    j, f = dm.frame_jf(pred, gt)
    assert j == dm.jaccard(pred, gt)
    assert f == pytest.approx(dm.boundary_f(pred, gt), abs=1e-15)
    assert f == pytest.approx(ref_boundary_f(pred, gt), abs=1e-12)
    empty = np.zeros((h, w), dtype=bool)
    assert dm.frame_jf(empty, empty) == (1.0, 1.0)
    assert dm.frame_jf(empty, gt) == (0.0, 0.0)


# ---------------------------------------------------------------------------------------
# Sequence statistics


def test_decay_breakpoints_round_half_up():
    # m = 3: 1 + k·2/4 = 1, 1.5, 2, 2.5, 3 → half up 1, 2, 2, 3, 3 (np.round: ..., 2, 3)
    np.testing.assert_array_equal(dm.decay_breakpoints(3), [0, 1, 1, 2, 2])
    # m = 7: 1, 2.5, 4, 5.5, 7 → 1, 3, 4, 6, 7 (np.round would give 2 and 6)
    np.testing.assert_array_equal(dm.decay_breakpoints(7), [0, 2, 3, 5, 6])
    # m = 10: 1, 3.25, 5.5, 7.75, 10 → 1, 3, 6, 8, 10
    np.testing.assert_array_equal(dm.decay_breakpoints(10), [0, 2, 5, 7, 9])


def test_sequence_statistics_known_sequence():
    values = np.array([np.nan, 0.9, 0.8, 0.7, 0.6, 0.2, 0.5, 0.45, 0.3, 0.4, 0.1, 0.95])
    stats = dm.sequence_statistics(values)
    assert stats["mean"] == pytest.approx(np.mean(values[1:]))  # last frame included
    inner = values[1:-1]  # 10 values, without the first and the last frame
    assert stats["recall"] == pytest.approx(4 / 10)  # 0.9 0.8 0.7 0.6 > 0.5; 0.5 is not
    # breakpoints [0, 2, 5, 7, 9]: bin 0 = inner[0:3], bin 3 = inner[7:10]
    assert stats["decay"] == pytest.approx(np.mean(inner[0:3]) - np.mean(inner[7:10]))
    assert stats["decay"] == pytest.approx(0.8 - (0.3 + 0.4 + 0.1) / 3)


def test_sequence_statistics_decay_nan_in_bin_and_tiny_sequences():
    values = np.array([np.nan, np.nan, 1.0, 1.0, 0.0, 0.0])  # inner m = 4: [nan, 1, 1, 0]
    # breakpoints 1, 1.75, 2.5, 3.25, 4 → 1, 2, 3, 3, 4 → bins [0:2], [1:3], [2:3], [2:4]
    assert dm.sequence_statistics(values)["decay"] == pytest.approx(1.0 - 0.5)
    two = dm.sequence_statistics(np.array([np.nan, 0.7]))  # nothing between first and last
    assert two["mean"] == pytest.approx(0.7)
    assert math.isnan(two["recall"]) and math.isnan(two["decay"])


# ---------------------------------------------------------------------------------------
# Folders and command line


def make_dataset(root: Path, videos: dict[str, list[np.ndarray]], name: str) -> Path:
    folder = root / name
    for video, masks in videos.items():
        for i, m in enumerate(masks):
            write_mask(folder / video / f"{i:05d}.png", m)
    return folder


def toy_videos(seed: int = 0, n: int = 6) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for v in ("bear", "camel"):
        base = [square(40, 60, 5 + i, 25 + i, 10, 40) for i in range(n)]
        gt[v] = base
        pred[v] = [np.roll(m, int(rng.integers(-3, 4)), axis=1) for m in base]
    return gt, pred


def test_dense_evaluation_and_json(tmp_path):
    gt, pred = toy_videos()
    gt_dir = make_dataset(tmp_path, gt, "gt")
    res_dir = make_dataset(tmp_path, pred, "res")
    out = tmp_path / "scores.json"
    args = ["--gt_path", str(gt_dir), "--result_path", str(res_dir), "--json", str(out)]
    assert test_for_davis.main([*args, "--workers", "2"]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"J", "F", "JF", "videos"}
    assert set(data["J"]) == set(data["F"]) == {"mean", "recall", "decay"}
    assert set(data["videos"]) == {"bear", "camel"}
    for video, masks in gt.items():
        j = [dm.jaccard(p, g) for p, g in zip(pred[video][1:], masks[1:], strict=True)]
        f = [ref_boundary_f(p, g) for p, g in zip(pred[video][1:], masks[1:], strict=True)]
        v = data["videos"][video]
        assert v["J"] == pytest.approx(dm.sequence_statistics(np.array([np.nan, *j])))
        assert v["F"] == pytest.approx(dm.sequence_statistics(np.array([np.nan, *f])))
    for m in ("J", "F"):
        for k in ("mean", "recall", "decay"):
            assert data[m][k] == pytest.approx(np.mean([v[m][k] for v in data["videos"].values()]))
    assert data["JF"] == pytest.approx((data["J"]["mean"] + data["F"]["mean"]) / 2)
    # The first frame is ignored: it needs no prediction, and a wrong one does not count.
    (res_dir / "bear" / "00000.png").unlink()
    write_mask(res_dir / "camel" / "00000.png", np.zeros((40, 60), dtype=bool))
    assert test_for_davis.main(args[:4] + ["--json", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text()) == data


def test_sparse_scripts_score_annotated_frames_only(tmp_path, capsys):
    gt, pred = toy_videos(1, n=8)
    gt_dir = make_dataset(tmp_path, gt, "gt")
    res_dir = make_dataset(tmp_path, pred, "res")
    for video in gt:  # keep annotations of frames 0, 3, 7 only
        for i in (1, 2, 4, 5, 6):
            (gt_dir / video / f"{i:05d}.png").unlink()
    out = tmp_path / "s.json"
    args = ["--gt_path", str(gt_dir), "--result_path", str(res_dir), "--json", str(out)]
    for script in (test_for_fbms, test_for_longvideo, test_for_ytb_obj):
        assert script.main(args) == 0
        data = json.loads(out.read_text())
        for video in gt:
            idx = (0, 3, 7)
            j = np.mean([dm.jaccard(pred[video][i], gt[video][i]) for i in idx])
            assert data["videos"][video]["J"] == {"mean": pytest.approx(j)}
        assert data["J"]["mean"] == pytest.approx(
            np.mean([v["J"]["mean"] for v in data["videos"].values()])
        )
    assert set(data["categories"]) == {"bear", "camel"}  # YouTube-Objects: per category
    assert "Mean over categories" in capsys.readouterr().out


def test_missing_prediction_error_and_missing_as_empty(tmp_path, capsys):
    gt, pred = toy_videos()
    gt_dir = make_dataset(tmp_path, gt, "gt")
    res_dir = make_dataset(tmp_path, pred, "res")
    (res_dir / "camel" / "00002.png").unlink()
    (res_dir / "camel" / "00004.png").unlink()
    args = ["--gt_path", str(gt_dir), "--result_path", str(res_dir), "--workers", "1"]
    assert test_for_davis.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and "camel/00002.png" in err[0] and err[0].startswith("error: no prediction")
    )
    out = tmp_path / "e.json"
    assert test_for_davis.main([*args, "--missing_as_empty", "--json", str(out)]) == 0
    j = json.loads(out.read_text())["videos"]["camel"]["J"]["mean"]
    expected = [dm.jaccard(p, g) for p, g in zip(pred["camel"][1:], gt["camel"][1:], strict=True)]
    expected[1] = expected[3] = 0.0  # frames 2 and 4 count as empty predictions
    assert j == pytest.approx(np.mean(expected))


def error_of(main, args, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_error_messages(tmp_path, capsys):
    gt, pred = toy_videos()
    gt_dir = make_dataset(tmp_path, gt, "gt")
    res_dir = make_dataset(tmp_path, pred, "res")

    def run(g, r, workers=1):
        args = ["--gt_path", str(g), "--result_path", str(r), "--workers", str(workers)]
        return error_of(test_for_davis.main, args, capsys)

    msg = run(tmp_path / "nope", res_dir)
    assert "ground-truth folder" in msg and "nope is not a folder" in msg
    (tmp_path / "empty").mkdir()
    msg = run(gt_dir, tmp_path / "empty")
    assert "no video folders in result folder" in msg and "empty/<video>/<frame>.png" in msg
    assert "absent/<video>/<frame>.png" in run(gt_dir, tmp_path / "absent")
    (res_dir / "extra").mkdir()
    assert "gt/extra" in run(gt_dir, res_dir)  # a result sequence without ground truth
    (res_dir / "extra").rmdir()
    (gt_dir / "bear" / "00003.png").write_bytes(b"not an image")
    msg = run(gt_dir, res_dir)
    assert "cannot read this image" in msg and "bear/00003.png" in msg
    assert run(gt_dir, res_dir, workers=2) == msg  # raised in a worker: the same line
    write_mask(gt_dir / "bear" / "00003.png", gt["bear"][3])
    write_mask(res_dir / "bear" / "00002.png", np.zeros((20, 60), dtype=bool))
    msg = run(gt_dir, res_dir)
    assert "bear/00002.png is 60x20" in msg and "60x40" in msg
    for i in range(1, 6):
        (gt_dir / "bear" / f"{i:05d}.png").unlink()
    assert "too few ground-truth frames" in run(gt_dir, res_dir)


def test_script_subprocess_exit_status(tmp_path):
    """Run as `python test_scripts/test_for_davis.py ...` from the repo root."""
    gt, pred = toy_videos()
    gt_dir = make_dataset(tmp_path, gt, "gt")
    res_dir = make_dataset(tmp_path, pred, "res")
    script = REPO / "test_scripts" / "test_for_davis.py"
    ok = subprocess.run(
        [sys.executable, str(script), "--gt_path", str(gt_dir), "--result_path", str(res_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "J&F:" in ok.stdout and "Average" in ok.stdout
    (res_dir / "bear" / "00001.png").unlink()
    bad = subprocess.run(
        [sys.executable, str(script), "--gt_path", str(gt_dir), "--result_path", str(res_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "bear/00001.png" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_palette_and_255_masks_read_alike(tmp_path):
    m = square(8, 9, 2, 5, 3, 7)
    pal = Image.frombytes("P", (9, 8), m.astype(np.uint8).tobytes())
    pal.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    pal.save(tmp_path / "p.png")
    write_mask(tmp_path / "g.png", m)
    Image.fromarray(m).save(tmp_path / "b.png")  # 1-bit
    for name in ("p.png", "g.png", "b.png"):
        grey = read_grey(tmp_path / name)
        expected = np.asarray(Image.open(tmp_path / name).convert("L"))
        np.testing.assert_array_equal(grey, expected)  # PIL's convert("L"), as the release
        np.testing.assert_array_equal(grey > 0, m)


# ---------------------------------------------------------------------------------------
# Real data


def toolkit_frame(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """The DAVIS toolkit's J and F: seg2bmap + skimage binary_dilation(disk(r))."""
    from skimage.morphology import binary_dilation, disk

    def seg2bmap(seg):
        e, s, se = (np.zeros_like(seg) for _ in range(3))
        e[:, :-1], s[:-1, :], se[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
        b = seg ^ e | seg ^ s | seg ^ se
        b[-1, :], b[:, -1] = seg[-1, :] ^ e[-1, :], seg[:, -1] ^ s[:, -1]
        b[-1, -1] = 0
        return b

    j = 1.0 if not (pred | gt).any() else (pred & gt).sum() / np.sum(pred | gt, dtype=np.float32)
    r = np.ceil(0.008 * np.linalg.norm(gt.shape))
    bp, bg = seg2bmap(pred), seg2bmap(gt)
    dp, dg = binary_dilation(bp, disk(r)), binary_dilation(bg, disk(r))
    n_p, n_g = bp.sum(), bg.sum()
    if n_p == 0 or n_g == 0:
        prec, rec = float(n_g == 0), float(n_p == 0)
    else:
        prec, rec = (bp & dg).sum() / n_p, (bg & dp).sum() / n_g
    return float(j), (0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))


@needs_davis
def test_davis_videos_against_toolkit(tmp_path):
    rng = np.random.default_rng(0)
    names = sorted(p.name for p in (DAVIS_MASKS / "car-shadow").iterdir())[:8]
    gt_paths = tuple(DAVIS_MASKS / "car-shadow" / n for n in names)
    pred_paths = []
    for i, p in enumerate(gt_paths):
        g = read_grey(p) > 0
        pert = np.roll(g, (int(rng.integers(-9, 10)), int(rng.integers(-9, 10))), axis=(0, 1))
        if i % 3 == 0:
            pert = cv2.dilate(pert.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        if i == 5:
            pert[:] = False
        write_mask(tmp_path / names[i], pert)
        pred_paths.append(tmp_path / names[i])
    task = dm.VideoTask("car-shadow", gt_paths, (None, *pred_paths[1:]), skip_first=True)
    scores = dm.score_video(task)
    assert math.isnan(scores.j[0]) and math.isnan(scores.f[0])
    for i in range(1, len(names)):
        j, f = toolkit_frame(read_grey(pred_paths[i]) > 0, read_grey(gt_paths[i]) > 0)
        assert scores.j[i] == pytest.approx(j, abs=1e-12)
        assert scores.f[i] == pytest.approx(f, abs=1e-12)


@needs_davis
def test_davis_self_score_two_videos(tmp_path):
    for video in ("car-shadow", "motocross-jump"):
        (tmp_path / video).symlink_to((DAVIS_MASKS / video).resolve())
    videos = ["car-shadow", "motocross-jump"]
    with pytest.raises(EvalError, match="18 of 20 videos have no result folder"):
        dm.evaluate(DAVIS_MASKS, tmp_path, dense=True)
    summary = dm.evaluate(DAVIS_MASKS, tmp_path, dense=True, workers=2, videos=videos)
    assert summary["JF"] == 1.0
    assert summary["J"] == {"mean": 1.0, "recall": 1.0, "decay": 0.0}
    assert set(summary["videos"]) == {"car-shadow", "motocross-jump"}


def test_dense_protocol_names_a_prediction_whose_ground_truth_is_missing(tmp_path, caplog):
    gt, pred = toy_videos()
    gt_dir = make_dataset(tmp_path, gt, "gt")
    res_dir = make_dataset(tmp_path, pred, "res")
    (gt_dir / "bear" / "00003.png").unlink()  # a ground-truth frame missing from the folder
    args = ["--gt_path", str(gt_dir), "--result_path", str(res_dir), "--workers", "1"]
    out = tmp_path / "s.json"
    assert test_for_davis.main([*args, "--json", str(out)]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{res_dir / 'bear'}: predictions without a ground-truth")
    assert "not scored: 1 (first: 00003.png)" in warnings[0]
    j = [
        dm.jaccard(p, g)
        for i, (p, g) in enumerate(zip(pred["bear"], gt["bear"], strict=True))
        if i not in (0, 3)
    ]
    assert json.loads(out.read_text())["videos"]["bear"]["J"]["mean"] == pytest.approx(np.mean(j))
    caplog.clear()
    assert test_for_fbms.main(args) == 0  # sparse protocols: expected, no warning
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("where", ["folder", "under_a_file", "proc"])
def test_json_path_is_checked_before_scoring(tmp_path, capsys, where):
    gt, pred = toy_videos(n=3)
    args = ["--gt_path", str(make_dataset(tmp_path, gt, "gt")), "--workers", "1"]
    args += ["--result_path", str(make_dataset(tmp_path, pred, "res"))]
    (tmp_path / "a_file").write_text("x")
    json_path = {
        "folder": tmp_path,
        "under_a_file": tmp_path / "a_file" / "s.json",
        "proc": Path("/proc/mtnet_no_such_dir/s.json"),
    }[where]
    assert test_for_davis.main([*args, "--json", str(json_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing scored in vain
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --json ") and str(json_path) in lines[0]


# ---------------------------------------------------------------------------------------
# Which videos are scored: the ground truth's, each with its results (or --videos)


@pytest.mark.parametrize(
    "script", [test_for_davis, test_for_fbms, test_for_ytb_obj, test_for_longvideo]
)
def test_a_video_without_results_stops_or_counts_as_empty(tmp_path, capsys, script):
    gt, pred = toy_videos(n=6)
    gt_dir = make_dataset(tmp_path, gt, "gt")
    res_dir = make_dataset(tmp_path, pred, "res")
    shutil.rmtree(res_dir / "camel")  # a killed or partial test.py run
    args = ["--gt_path", str(gt_dir), "--result_path", str(res_dir), "--workers", "1"]
    msg = error_of(script.main, args, capsys)
    assert "1 of 2 videos have no result folder" in msg and msg.endswith(
        "camel (score a subset with --videos, or count them as empty predictions with "
        "--missing_as_empty)"
    )
    out = tmp_path / "e.json"
    assert script.main([*args, "--missing_as_empty", "--json", str(out)]) == 0
    camel = json.loads(out.read_text())["videos"]["camel"]
    dense = script is test_for_davis
    expected = [dm.jaccard(np.zeros_like(g), g) for g in gt["camel"][1 if dense else 0 :]]
    assert camel["J"]["mean"] == pytest.approx(np.mean(expected))
    assert script.main([*args, "--videos", "bear", "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())["videos"]) == {"bear"}


def test_videos_flag_names_unknown_videos_and_skips_foreign_results(tmp_path, capsys):
    gt, pred = toy_videos(n=4)
    gt_dir = make_dataset(tmp_path, gt, "gt")
    res_dir = make_dataset(tmp_path, pred, "res")
    (gt_dir / "empty_video").mkdir()  # no mask: not a ground-truth video
    args = ["--gt_path", str(gt_dir), "--result_path", str(res_dir), "--workers", "1"]
    msg = error_of(test_for_davis.main, [*args, "--videos", "bear", "dog"], capsys)
    assert msg.startswith("error: --videos: no ground truth for dog in ") and "bear, camel" in msg
    write_mask(res_dir / "other_clip" / "00001.png", np.zeros((40, 60), dtype=bool))
    msg = error_of(test_for_davis.main, args, capsys)
    assert "other_clip has no ground truth" in msg and "--videos" in msg
    out = tmp_path / "v.json"
    assert test_for_davis.main([*args, "--videos", "camel", "bear", "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())["videos"]) == ["bear", "camel"]


def test_jpeg_predictions_are_scored_with_one_warning_per_folder(tmp_path, caplog):
    gt, pred = toy_videos(n=4)
    gt_dir = make_dataset(tmp_path, gt, "gt")
    res_dir = make_dataset(tmp_path, pred, "res")
    for video in gt:
        for png in sorted((res_dir / video).glob("*.png"))[1:]:
            cv2.imwrite(str(png.with_suffix(".jpg")), cv2.imread(str(png)))
            png.unlink()
    args = ["--gt_path", str(gt_dir), "--result_path", str(res_dir), "--workers", "1"]
    assert test_for_davis.main(args) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"{res_dir / 'bear'}: predictions stored as JPEG")
    assert "(lossy; first: 00001.jpg)" in warnings[0]
