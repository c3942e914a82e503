"""VSOD evaluation (test_scripts/test_vsod) against DESIGN.md §9 and the release's formulas."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from test_scripts.evalio import read_grey, read_pair
from test_scripts.test_vsod import main as vsod_script
from test_scripts.test_vsod import metrics as vm
from tests.conftest import DAVIS_VAL

REPO = Path(__file__).resolve().parents[1]
DAVIS_MASKS = DAVIS_VAL / "mask"
needs_davis = pytest.mark.usefixtures("davis_val")  # skipped when the shared data is absent

# ---------------------------------------------------------------------------------------
# Plain per-pixel references of the §9 formulas (tiny arrays only)

F32_THRESHOLDS = [float(t) for t in torch.linspace(0, 1 - 1e-10, 256)]  # float32 values


def as_values(a: np.ndarray) -> list[float]:
    """8-bit levels → value/255 in float32 (as Python floats), flattened."""
    return [float(v) for v in (a.astype(np.float32) / np.float32(255)).ravel()]


def ref_curves(p: list[float], g: list[float]) -> tuple[list[float], list[float]]:
    n = len(p)
    f_curve, e_curve = [], []
    mean_g = sum(g) / n
    for th in F32_THRESHOLDS:
        binary = [1.0 if x >= th else 0.0 for x in p]
        tp = sum(b * y for b, y in zip(binary, g, strict=True))
        prec, rec = tp / (sum(binary) + 1e-20), tp / (sum(g) + 1e-20)
        f_curve.append(1.3 * prec * rec / (0.3 * prec + rec + 1e-10))
        mean_b = sum(binary) / n
        total = 0.0
        for b, y in zip(binary, g, strict=True):
            fp, fg = b - mean_b, y - mean_g
            xi = 2 * fg * fp / (fg * fg + fp * fp + 1e-20)
            total += (xi + 1) ** 2 / 4
        e_curve.append(total / (n - 1 + 1e-20))
    return f_curve, e_curve


def ref_object(xs: list[float]) -> float:
    if not xs:
        return 0.0
    mean = sum(xs) / len(xs)
    sigma = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return 2 * mean / (mean * mean + 1 + sigma + 1e-20)


def ref_ssim(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    x, y = sum(xs) / n, sum(ys) / n
    d = n - 1 + 1e-20
    sxx = sum((a - x) ** 2 for a in xs) / d
    syy = sum((b - y) ** 2 for b in ys) / d
    sxy = sum((a - x) * (b - y) for a, b in zip(xs, ys, strict=True)) / d
    alpha, beta = 4 * x * y * sxy, (x * x + y * y) * (sxx + syy)
    if alpha != 0:
        return alpha / (beta + 1e-20)
    return 1.0 if beta == 0 else 0.0


def ref_s(pred: np.ndarray, gt: np.ndarray) -> float:
    h, w = gt.shape
    p, g = as_values(pred), as_values(gt)
    mean_g, mean_p = sum(g) / len(g), sum(p) / len(p)
    if mean_g < 1e-4:
        return 1 - mean_p
    if mean_g == 1:
        return mean_p
    gb = [1.0 if y >= 0.5 else 0.0 for y in g]
    u = sum(gb) / len(gb)
    fg = [x for x, y in zip(p, gb, strict=True) if y == 1]
    bg = [1 - x for x, y in zip(p, gb, strict=True) if y == 0]
    s_obj = u * ref_object(fg) + (1 - u) * ref_object(bg)
    if sum(gb) == 0:
        cx, cy = round(w / 2), round(h / 2)
    else:
        cx = round(sum((i % w) * y for i, y in enumerate(gb)) / sum(gb))
        cy = round(sum((i // w) * y for i, y in enumerate(gb)) / sum(gb))
    area = h * w
    w1, w2, w3 = cx * cy / area, (w - cx) * cy / area, cx * (h - cy) / area
    s_reg = 0.0
    for weight, (r0, r1, c0, c1) in zip(
        (w1, w2, w3, 1 - w1 - w2 - w3),
        ((0, cy, 0, cx), (0, cy, cx, w), (cy, h, 0, cx), (cy, h, cx, w)),
        strict=True,
    ):
        idx = [r * w + c for r in range(r0, r1) for c in range(c0, c1)]
        if idx:  # an empty block has weight 0 (DESIGN.md §9)
            s_reg += weight * ref_ssim([p[i] for i in idx], [gb[i] for i in idx])
    return max(0.5 * s_obj + 0.5 * s_reg, 0.0)


def ref_frame(pred: np.ndarray, gt: np.ndarray) -> dict:
    p, g = as_values(pred), as_values(gt)
    f, e = ref_curves(p, g)
    mae = sum(abs(a - b) for a, b in zip(p, g, strict=True)) / len(p)
    return {"mae": mae, "f": np.array(f), "e": np.array(e), "s": ref_s(pred, gt)}


def tiny_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    h, w = 6, 7
    soft = rng.integers(0, 256, (h, w), dtype=np.uint8)
    gt = np.zeros((h, w), np.uint8)
    gt[2:5, 1:4] = 255
    corner = np.zeros((h, w), np.uint8)
    corner[0, 0:2] = 255  # centroid row 0: the top blocks are empty
    soft_gt = rng.integers(0, 256, (h, w), dtype=np.uint8)
    levels = np.array([[0, 3, 6, 7, 12, 15, 24], [31, 48, 63, 64, 96, 127, 128]], np.uint8)
    levels = np.vstack([levels] * 3)  # exactly the exceptional threshold levels
    return {
        "soft pred, binary gt": (soft, gt),
        "exceptional levels": (levels, gt),
        "soft gt": (soft, soft_gt),
        "empty gt": (soft, np.zeros((h, w), np.uint8)),
        "full gt": (soft, np.full((h, w), 255, np.uint8)),
        "empty pred": (np.zeros((h, w), np.uint8), gt),
        "full pred": (np.full((h, w), 255, np.uint8), gt),
        "gt in first row": (soft, corner),
        "constant pred": (np.full((h, w), 77, np.uint8), gt),
        "perfect": (gt.copy(), gt),
    }


# ---------------------------------------------------------------------------------------
# Thresholds and per-frame metrics


def test_threshold_cuts_match_release_float32_comparison():
    thresholds = torch.linspace(0, 1 - 1e-10, 256, dtype=torch.float32)  # the release's
    values = torch.arange(256, dtype=torch.float32) / 255  # ToTensor's v / 255
    kept = values[None, :] >= thresholds[:, None]
    cuts = (256 - kept.sum(dim=1)).numpy()
    assert np.array_equal(vm.threshold_cuts(), cuts)
    exceptional = {i for i in range(256) if cuts[i] != i}
    expected = {3, 6, 7, *range(12, 16), *range(24, 32), *range(48, 64), *range(96, 128)}
    assert exceptional == expected and len(expected) == 63
    assert all(cuts[i] == i + 1 for i in exceptional)
    assert all(i < 128 and format(i, "b").startswith("11") for i in exceptional)
    assert cuts[0] == 0 and cuts[255] == 255  # the last threshold is exactly 1.0 in float32
    assert vm.half_level() == 128


@pytest.mark.parametrize("case", list(tiny_cases()))
def test_frame_metrics_match_plain_loops(case):
    pred, gt = tiny_cases()[case]
    got = vm.frame_scores(pred, gt)
    ref = ref_frame(pred, gt)
    assert got.abs_err / (255 * got.pixels) == pytest.approx(ref["mae"], abs=1e-7)
    np.testing.assert_allclose(got.f, ref["f"], atol=1e-7, rtol=0)
    np.testing.assert_allclose(got.e, ref["e"], atol=1e-7, rtol=0)
    assert got.s == pytest.approx(ref["s"], abs=1e-7)


def test_special_cases_by_hand():
    gt = np.zeros((4, 5), np.uint8)
    gt[1:3, 1:3] = 255
    perfect = vm.frame_scores(gt, gt)
    assert perfect.abs_err == 0
    assert perfect.s == pytest.approx(1.0)
    # A 0/255 prediction: thresholds 1..255 keep exactly the object (F = 1); threshold 0
    # keeps all 20 pixels: P = 4/20, R = 1.
    np.testing.assert_allclose(perfect.f[1:], 1.0, rtol=1e-9)
    assert perfect.f[0] == pytest.approx(1.3 * 0.2 / (0.3 * 0.2 + 1 + 1e-10))
    # E of a perfect binary map: every pixel has ξ = 1, sum = N, divided by N − 1.
    assert perfect.e[1] == pytest.approx(20 / 19)
    empty = np.zeros_like(gt)
    both_empty = vm.frame_scores(empty, empty)
    assert both_empty.s == 1.0 and both_empty.abs_err == 0
    assert both_empty.f.max() == 0.0  # no ground-truth mass: recall 0
    assert both_empty.e[1] == pytest.approx(0.25 * 20 / 19)  # φ = 0 everywhere: ξ = 0
    full = np.full_like(gt, 255)
    assert vm.frame_scores(full, full).s == 1.0  # mean(gt) = 1: S = mean(pred)
    assert vm.frame_scores(empty, full).s == 0.0
    assert vm.frame_scores(full, empty).s == 0.0  # mean(gt) = 0: S = 1 − mean(pred)


def test_dataset_scores_average_videos_then_take_max():
    a, b = vm.VideoScores("a"), vm.VideoScores("b")
    for video, peak, frames in ((a, 10, 1), (b, 200, 3)):
        for _ in range(frames):
            f = np.zeros(256)
            f[peak] = 0.9
            video.add(vm.FrameScores(255 * 4, 4, f, f / 2, 0.5 if video is a else 0.7))
    scores = vm.dataset_scores([a, b])
    assert scores["maxF"] == pytest.approx(0.45)  # max of the mean curve, not 0.9
    assert scores["maxE"] == pytest.approx(0.225)
    assert scores["MAE"] == pytest.approx(1.0)
    assert scores["S"] == pytest.approx(0.6)  # mean over videos, not over frames


# ---------------------------------------------------------------------------------------
# Release-style float32 reference and pysodmetrics on real frames


def release_frame(pred_u8: np.ndarray, gt_u8: np.ndarray) -> dict:
    """The release's evaluator in float32 torch (with §9's empty-block fix)."""
    pred = torch.from_numpy(pred_u8).float() / 255
    gt = torch.from_numpy(gt_u8).float() / 255
    th = torch.linspace(0, 1 - 1e-10, 256)[:, None, None]
    yt = (pred[None] >= th).float()  # [256, H, W]: every threshold at once
    tp = (yt * gt).sum((1, 2))
    prec, rec = tp / (yt.sum((1, 2)) + 1e-20), tp / (gt.sum() + 1e-20)
    f = (1.3 * prec * rec / (0.3 * prec + rec + 1e-10)).numpy()
    fm, gm = yt - yt.mean((1, 2), keepdim=True), gt - gt.mean()
    align = 2 * gm * fm / (gm * gm + fm * fm + 1e-20)
    e = (((align + 1) * (align + 1) / 4).sum((1, 2)) / (gt.numel() - 1 + 1e-20)).numpy()
    return {
        "mae": float((pred - gt).abs().mean()),
        "f": f.astype(np.float64),
        "e": e.astype(np.float64),
        "s": release_s(pred, gt),
    }


def release_s(pred: torch.Tensor, gt: torch.Tensor) -> float:
    y = gt.mean()
    if y < 1e-4:
        return float(1 - pred.mean())
    if y == 1:
        return float(pred.mean())
    gt = (gt >= 0.5).float()

    def obj(x: torch.Tensor) -> torch.Tensor:
        m = x.mean()
        return 2.0 * m / (m * m + 1.0 + x.std() + 1e-20)

    u = gt.mean()
    q_obj = u * obj(pred[gt == 1]) + (1 - u) * obj((1 - pred)[gt == 0])
    h, w = gt.shape
    total = gt.sum()
    cx = int(torch.round((gt.sum(0) * torch.arange(w).float()).sum() / total + 1e-20))
    cy = int(torch.round((gt.sum(1) * torch.arange(h).float()).sum() / total + 1e-20))
    w1, w2, w3 = cx * cy / (h * w), (w - cx) * cy / (h * w), cx * (h - cy) / (h * w)
    rows, cols = (slice(0, cy), slice(cy, h)), (slice(0, cx), slice(cx, w))
    blocks = [(r, c) for r in rows for c in cols]
    q_reg = sum(
        wt * release_ssim(pred[b], gt[b])
        for wt, b in zip((w1, w2, w3, 1 - w1 - w2 - w3), blocks, strict=True)
        if pred[b].numel()  # an empty block has weight 0 (DESIGN.md §9)
    )
    return max(float(0.5 * q_obj + 0.5 * q_reg), 0.0)


def release_ssim(pred: torch.Tensor, gt: torch.Tensor) -> float:
    n = pred.numel()
    x, y = pred.mean(), gt.mean()
    sxx = ((pred - x) * (pred - x)).sum() / (n - 1 + 1e-20)
    syy = ((gt - y) * (gt - y)).sum() / (n - 1 + 1e-20)
    sxy = ((pred - x) * (gt - y)).sum() / (n - 1 + 1e-20)
    alpha, beta = 4 * x * y * sxy, (x * x + y * y) * (sxx + syy)
    if alpha != 0:
        return float(alpha / (beta + 1e-20))
    return 1.0 if beta == 0 else 0.0


def soft_prediction(gt: np.ndarray, seed: int) -> np.ndarray:
    """A blurred, shifted, noisy 8-bit map as a model might output."""
    rng = np.random.default_rng(seed)
    shifted = np.roll(gt, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
    blurred = cv2.GaussianBlur(shifted.astype(np.float32), (0, 0), 3 + seed)
    noisy = np.clip(blurred * 0.9 + rng.random(gt.shape) * 20, 0, 255).astype(np.uint8)
    noisy.flat[0], noisy.flat[-1] = 0, 255  # full range: pysodmetrics' min-max is a no-op
    return noisy


def davis_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """Three third-resolution DAVIS masks with soft predictions made from them."""
    frames = []
    for k, (video, frame) in enumerate((("bmx-trees", 10), ("dog", 30), ("libby", 5))):
        gt = read_grey(DAVIS_MASKS / video / f"{frame:05d}.png")[::3, ::3].copy()
        frames.append((soft_prediction(gt, k), gt))
    return frames


@needs_davis
def test_real_frames_match_release_float32():
    for pred, gt in davis_frames():
        got, ref = vm.frame_scores(pred, gt), release_frame(pred, gt)
        assert got.abs_err / (255 * got.pixels) == pytest.approx(ref["mae"], abs=1e-6)
        np.testing.assert_allclose(got.f, ref["f"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(got.e, ref["e"], atol=1e-6, rtol=0)
        assert got.s == pytest.approx(ref["s"], abs=1e-6)


@needs_davis
@pytest.mark.filterwarnings("ignore::UserWarning")  # pysodmetrics' Fmeasure deprecation note
def test_real_frames_against_pysodmetrics():
    """Exact MAE; F and E use exact 8-bit thresholds there (63 differ, §9) and S another
    centroid, so those agree only closely."""
    import py_sod_metrics as psm

    mae, fm, em, sm = psm.MAE(), psm.Fmeasure(), psm.Emeasure(), psm.Smeasure()
    ours = []
    for pred, gt in davis_frames():
        for m in (mae, fm, em, sm):
            m.step(pred=pred, gt=gt)
        ours.append(vm.frame_scores(pred, gt))
    assert mae.get_results()["mae"] == pytest.approx(
        np.mean([o.abs_err / (255 * o.pixels) for o in ours]), abs=1e-9
    )
    f_curve = np.mean([o.f for o in ours], axis=0)
    e_curve = np.mean([o.e for o in ours], axis=0)
    assert fm.get_results()["fm"]["curve"].max() == pytest.approx(f_curve.max(), abs=5e-3)
    assert em.get_results()["em"]["curve"].max() == pytest.approx(e_curve.max(), abs=5e-3)
    assert sm.get_results()["sm"] == pytest.approx(np.mean([o.s for o in ours]), abs=2e-3)


# ---------------------------------------------------------------------------------------
# Folders and command line


def write_png(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), a)


def make_tree(root: Path, *, n: int = 5, gt_subfolder: bool = False, vsod_folder: bool = False):
    """G/<ds>/<video>/ and P/<method>/[VSOD/]<ds>/<video>/ with n frames per video."""
    rng = np.random.default_rng(3)
    frames: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for ds in ("DAVIS16", "ViSal"):
        for video in ("v1", "v2"):
            pairs = []
            for i in range(n):
                gt = np.zeros((12, 16), np.uint8)
                gt[2 + i % 3 : 9, 3:11] = 255
                pred = rng.integers(0, 256, gt.shape, dtype=np.uint8)
                gt_dir = root / "G" / ds / video / ("GT" if gt_subfolder else "")
                write_png(gt_dir / f"{i:05d}.png", gt)
                for method in ("MTNet", "Other"):
                    mid = "VSOD" if vsod_folder else ""
                    write_png(root / "P" / method / mid / ds / video / f"{i:05d}.png", pred)
                pairs.append((pred, gt))
            frames[(ds, video)] = pairs
    return frames


def expected_row(frames, ds: str, scored: slice) -> dict:
    videos = []
    for video in ("v1", "v2"):
        v = vm.VideoScores(video)
        for pred, gt in frames[(ds, video)][scored]:
            v.add(vm.frame_scores(pred, gt))
        videos.append(v)
    return vm.dataset_scores(videos)


@pytest.mark.parametrize("layout", [{}, {"gt_subfolder": True, "vsod_folder": True}])
def test_cli_layouts_pairing_and_json(tmp_path, layout):
    frames = make_tree(tmp_path, **layout)
    out = tmp_path / "vsod.json"
    base = ["--gt_dir", str(tmp_path / "G"), "--pred_dir", str(tmp_path / "P"), "--workers", "2"]
    assert (
        vsod_script.main([*base, "--method", "MTNet", "--dataset", "DAVIS16", "--json", str(out)])
        == 0
    )
    rows = json.loads(out.read_text())
    assert [set(r) for r in rows] == [{"method", "dataset", "MAE", "maxF", "maxE", "S"}]
    expected = expected_row(frames, "DAVIS16", slice(1, -1))  # --use_flow: not first, last
    assert (rows[0]["method"], rows[0]["dataset"]) == ("MTNet", "DAVIS16")
    assert {k: rows[0][k] for k in expected} == pytest.approx(expected)
    assert vsod_script.main([*base, "--no-use_flow", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["method"], r["dataset"]) for r in rows] == [
        ("MTNet", "DAVIS16"),
        ("MTNet", "ViSal"),
        ("Other", "DAVIS16"),
        ("Other", "ViSal"),
    ]
    expected = expected_row(frames, "ViSal", slice(None))
    assert {k: rows[1][k] for k in expected} == pytest.approx(expected)


def test_use_flow_needs_no_first_or_last_prediction(tmp_path):
    frames = make_tree(tmp_path)
    pred_video = tmp_path / "P" / "MTNet" / "DAVIS16" / "v1"
    (pred_video / "00000.png").unlink()
    (pred_video / "00004.png").unlink()  # drop tail
    out = tmp_path / "o.json"
    args = ["--gt_dir", str(tmp_path / "G"), "--pred_dir", str(tmp_path / "P"), "--method", "MTNet"]
    assert vsod_script.main([*args, "--dataset", "DAVIS16", "--json", str(out)]) == 0
    expected = expected_row(frames, "DAVIS16", slice(1, -1))
    assert json.loads(out.read_text())[0]["S"] == pytest.approx(expected["S"])


def error_of(args, capsys) -> str:
    assert vsod_script.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_error_messages(tmp_path, capsys):
    make_tree(tmp_path)
    g, p = str(tmp_path / "G"), str(tmp_path / "P")
    base = ["--gt_dir", g, "--pred_dir", p, "--workers", "1"]
    assert "dataset FBMS not found" in error_of([*base, "--dataset", "FBMS"], capsys)
    assert "method RTNet not found" in error_of([*base, "--method", "RTNet"], capsys)
    (tmp_path / "G" / "MCL").mkdir()
    (tmp_path / "P" / "MTNet" / "MCL").mkdir()
    assert "no video folders in ground-truth folder" in error_of(
        [*base, "--method", "MTNet", "--dataset", "MCL"], capsys
    )
    (tmp_path / "G" / "MCL").rmdir()
    (tmp_path / "P" / "MTNet" / "MCL").rmdir()
    assert "prediction folder" in error_of(
        ["--gt_dir", g, "--pred_dir", str(tmp_path / "x")], capsys
    )
    (tmp_path / "E").mkdir()
    assert "no method folders" in error_of(
        ["--gt_dir", g, "--pred_dir", str(tmp_path / "E")], capsys
    )
    (tmp_path / "E" / "Nothing").mkdir()
    msg = error_of(["--gt_dir", g, "--pred_dir", str(tmp_path / "E")], capsys)
    assert "no predictions of Nothing for any dataset" in msg
    msg = error_of(["--gt_dir", g, "--pred_dir", str(tmp_path / "E"), "--dataset", "ViSal"], capsys)
    assert "no predictions of Nothing for dataset ViSal" in msg
    pred = tmp_path / "P" / "MTNet" / "ViSal" / "v2"
    (pred / "00002.png").unlink()
    msg = error_of([*base, "--method", "MTNet"], capsys)
    assert "no prediction" in msg and "ViSal/v2/00002.png" in msg
    assert vsod_script.main([*base, "--method", "MTNet", "--missing_as_empty"]) == 0
    capsys.readouterr()
    write_png(pred / "00002.png", np.zeros((12, 17), np.uint8))
    msg = error_of([*base, "--method", "MTNet"], capsys)
    assert "v2/00002.png is 17x12" in msg and "16x12" in msg
    (pred / "00002.png").write_bytes(b"garbage")
    assert "cannot read this image" in error_of([*base, "--method", "MTNet"], capsys)
    gt_video = tmp_path / "G" / "ViSal" / "v1"
    for i in range(2, 5):
        (gt_video / f"{i:05d}.png").unlink()
    assert "too few ground-truth frames" in error_of(base, capsys)
    for i in range(2):
        (gt_video / f"{i:05d}.png").unlink()
    # A ground-truth folder without masks is not a video: its predictions have no ground truth.
    msg = error_of([*base, "--no-use_flow"], capsys)
    assert "ViSal/v1 has no ground truth" in msg and msg.endswith("score the others with --videos")


def test_script_subprocess_exit_status(tmp_path):
    make_tree(tmp_path, n=3)
    script = REPO / "test_scripts" / "test_vsod" / "main.py"
    args = ["--gt_dir", str(tmp_path / "G"), "--pred_dir", str(tmp_path / "P")]
    ok = subprocess.run(
        [sys.executable, str(script), *args], cwd=REPO, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "maxF" in ok.stdout and "ViSal" in ok.stdout
    bad = subprocess.run(
        [sys.executable, str(script), *args, "--dataset", "MCL"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "MCL" in bad.stderr


@needs_davis
def test_davis_videos_self_score(tmp_path):
    for video in ("car-shadow", "motocross-jump"):
        for side in ("G/DAVIS16", "P/MTNet/VSOD/DAVIS16"):
            (tmp_path / side).mkdir(parents=True, exist_ok=True)
            (tmp_path / side / video).symlink_to((DAVIS_MASKS / video).resolve())
    out = tmp_path / "s.json"
    args = ["--gt_dir", str(tmp_path / "G"), "--pred_dir", str(tmp_path / "P"), "--json", str(out)]
    assert vsod_script.main(args) == 0
    row = json.loads(out.read_text())[0]
    assert row["MAE"] == 0.0 and row["S"] == pytest.approx(1.0)
    assert row["maxF"] == pytest.approx(1.0) and row["maxE"] == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------------------------------
# Ground truth stored as 0/1, 16-bit and alpha predictions, cut-off files


def _rows(args: list[str], capsys) -> tuple[list[dict], str]:
    out = Path(args[args.index("--gt_dir") + 1]).parent / "rows.json"
    assert vsod_script.main([*args, "--json", str(out)]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def test_zero_one_ground_truth_scores_as_zero_255_with_a_note(tmp_path, capsys):
    make_tree(tmp_path, n=3)
    base = ["--pred_dir", str(tmp_path / "P"), "--method", "MTNet", "--dataset", "ViSal"]
    base += ["--workers", "1", "--no-use_flow"]
    rows, out = _rows(["--gt_dir", str(tmp_path / "G"), *base], capsys)
    assert "note:" not in out and "gt_scaled_videos" not in rows[0]
    for path in (tmp_path / "G" / "ViSal").rglob("*.png"):  # the same masks, stored 0/1
        write_png(path, read_grey(path) // 255)
    rows01, out01 = _rows(["--gt_dir", str(tmp_path / "G"), *base], capsys)
    assert {k: rows01[0][k] for k in ("MAE", "maxF", "maxE", "S")} == pytest.approx(
        {k: rows[0][k] for k in ("MAE", "maxF", "maxE", "S")}
    )
    assert rows01[0]["gt_scaled_videos"] == ["v1", "v2"]
    assert "note: MTNet/ViSal: the ground truth of 2 videos never exceeds 1" in out01


def test_a_video_with_values_above_one_is_taken_as_stored(tmp_path):
    gt = np.zeros((8, 8), np.uint8)
    gt[2:6, 2:6] = 1
    pred = np.full((8, 8), 200, np.uint8)
    write_png(tmp_path / "g0.png", gt)  # peaks at 1, but the video is not 0/1:
    write_png(tmp_path / "g1.png", gt * 255)  # this frame holds 255
    write_png(tmp_path / "p.png", pred)
    task = vm.VideoTask("v", (tmp_path / "g0.png", tmp_path / "g1.png"), (tmp_path / "p.png",) * 2)
    got = vm.score_video(task)
    assert not got.gt_scaled
    p, g = pred.astype(int), gt.astype(int)
    assert got.abs_err == np.abs(p - g).sum() + np.abs(p - 255 * g).sum()  # frame 0 as stored


def test_16_bit_and_opaque_alpha_predictions_score_as_their_8_bit_copy(tmp_path, capsys):
    frames = make_tree(tmp_path, n=3)
    base = ["--gt_dir", str(tmp_path / "G"), "--pred_dir", str(tmp_path / "P"), "--method"]
    base += ["MTNet", "--dataset", "ViSal", "--workers", "1", "--no-use_flow"]
    rows, _ = _rows(base, capsys)
    for i, (pred, _) in enumerate(frames[("ViSal", "v1")]):
        path = tmp_path / "P" / "MTNet" / "ViSal" / "v1" / f"{i:05d}.png"
        write_png(path, pred.astype(np.uint16) * 257)  # 16-bit grey
        assert read_grey(path).dtype == np.uint8
    for i, (pred, _) in enumerate(frames[("ViSal", "v2")]):
        rgba = np.dstack([pred, pred, pred, np.full_like(pred, 255)])  # opaque RGBA
        write_png(tmp_path / "P" / "MTNet" / "ViSal" / "v2" / f"{i:05d}.png", rgba)
    again, _ = _rows(base, capsys)
    assert again == rows


def test_reader_handles_16_bit_palette_and_alpha(tmp_path):
    from PIL import Image

    grey = np.array([[0, 77, 128, 255]], np.uint8)
    write_png(tmp_path / "g16.png", grey.astype(np.uint16) * 257)
    np.testing.assert_array_equal(read_grey(tmp_path / "g16.png"), grey)
    soft = np.array([[19660, 65535, 128, 129]], np.uint16)  # 0.3 of full scale, rounding
    write_png(tmp_path / "soft16.png", soft)
    np.testing.assert_array_equal(read_grey(tmp_path / "soft16.png"), [[76, 255, 0, 1]])
    # transparent background (its colour white, as some tools store it) reads as 0
    rgba = np.zeros((1, 4, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = [0, 255, 255, 0]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_grey(tmp_path / "a.png"), [[0, 255, 255, 0]])
    pal = Image.fromarray(np.array([[0, 1, 1, 0]], np.uint8), "P")
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_grey(tmp_path / "p.png"), [[0, 255, 255, 0]])


def test_palette_ground_truth_is_read_by_index_predictions_by_luminance(tmp_path):
    from PIL import Image

    pal = Image.fromarray(np.array([[0, 1, 1, 0]], np.uint8), "P")
    pal.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)  # object 1 drawn dark red: luminance 38
    pal.save(tmp_path / "p.png")
    pred, gt = read_pair(tmp_path / "p.png", tmp_path / "p.png")
    np.testing.assert_array_equal(gt, [[0, 255, 255, 0]])  # ground truth: by index
    np.testing.assert_array_equal(pred, [[0, 38, 38, 0]])  # a prediction: as the release


def test_cut_off_prediction_is_an_error_naming_it(tmp_path, capsys):
    make_tree(tmp_path, n=3)
    path = tmp_path / "P" / "MTNet" / "ViSal" / "v1" / "00001.png"
    rng = np.random.default_rng(0)
    write_png(path, rng.integers(0, 256, (12, 16), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    args = ["--gt_dir", str(tmp_path / "G"), "--pred_dir", str(tmp_path / "P"), "--method"]
    msg = error_of([*args, "MTNet", "--workers", "1", "--no-use_flow"], capsys)
    assert "cannot read this image" in msg and str(path) in msg


def test_a_video_without_predictions_is_named_and_videos_selects_a_subset(tmp_path, capsys):
    frames = make_tree(tmp_path)
    shutil.rmtree(tmp_path / "P" / "MTNet" / "ViSal" / "v2")
    out = tmp_path / "v.json"
    base = ["--gt_dir", str(tmp_path / "G"), "--pred_dir", str(tmp_path / "P")]
    base += ["--method", "MTNet", "--workers", "1", "--json", str(out)]
    msg = error_of(base, capsys)
    assert "1 of 2 videos have no result folder" in msg and "ViSal: v2 (score a subset" in msg
    assert vsod_script.main([*base, "--videos", "v1"]) == 0
    rows = json.loads(out.read_text())
    assert [r["dataset"] for r in rows] == ["DAVIS16", "ViSal"]
    one = vm.VideoScores("v1")
    for pred, gt in frames[("ViSal", "v1")][1:-1]:
        one.add(vm.frame_scores(pred, gt))
    assert {k: rows[1][k] for k in ("MAE", "S")} == pytest.approx(
        {k: vm.dataset_scores([one])[k] for k in ("MAE", "S")}
    )
    assert "no ground truth for v3" in error_of([*base, "--videos", "v1", "v3"], capsys)


def test_jpeg_maps_warn_once_per_folder(tmp_path, caplog):
    make_tree(tmp_path)
    video = tmp_path / "P" / "MTNet" / "DAVIS16" / "v1"
    for png in sorted(video.glob("*.png")):
        cv2.imwrite(str(png.with_suffix(".jpg")), cv2.imread(str(png), cv2.IMREAD_GRAYSCALE))
        png.unlink()
    args = ["--gt_dir", str(tmp_path / "G"), "--pred_dir", str(tmp_path / "P"), "--workers", "1"]
    assert vsod_script.main([*args, "--method", "MTNet", "--dataset", "DAVIS16"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{video}: predictions stored as JPEG (lossy; first: 00001.jpg): compression artefacts "
        "change the scores; save predictions as PNG (test.py does)"
    ]
