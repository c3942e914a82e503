"""test.py: reading, pairing, post-processing, outputs, resume, sharding and user errors.

The network is the randomly initialised test-sized MTNet (``tiny_weights``) at 64x64 on
one CPU thread (several threads on a shared 2-core machine are many times slower).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms
from torchvision.transforms import functional as TF

from dataset.registry import BENCHMARKS, resolve_benchmark
from dataset.test_videos import VideoSpec, clip_bounds, pair_video
from inference.postprocess import to_masks
from model import MTNet, variant_of_file
from model.weights import load_weights
from tests.synthetic_videos import make_dataset, make_video, stems
from util.errors import InputError
from util.image import IMAGENET_MEAN, IMAGENET_STD, resize_bilinear, to_network_input
from util.layout import DONE_NAME as DONE

ROOT = Path(__file__).resolve().parents[1]
SIZE = ["--test_size", "64", "64"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def pngs(count: int) -> list[str]:
    """The mask names of a video of ``count`` frames (``tests.synthetic_videos.stems``)."""
    return [f"{s}.png" for s in stems(count)]


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "SYN")


def _args(tiny_weights: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--test_model", str(tiny_weights), "--test_dataset", str(data), "--output_dir", str(out),
        "--device", "cpu", "--num_workers", "1", "--test_length", "3", *SIZE, *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def uvos_out(script, tiny_weights, syn, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uvos")
    assert script.main(_args(tiny_weights, syn, out)) == 0
    return out / "MTNet" / "UVOS" / "SYN"


def _assert_same_files(folder: Path, reference: Path) -> None:
    """Same ``<video>/<frame>.png`` names and pixels."""
    names = sorted(str(p.relative_to(reference)) for p in reference.glob("*/*.png"))
    assert sorted(str(p.relative_to(folder)) for p in folder.glob("*/*.png")) == names
    for name in names:
        np.testing.assert_array_equal(
            np.asarray(Image.open(folder / name)), np.asarray(Image.open(reference / name))
        )


# ---- reading and pairing -------------------------------------------------------------


def test_resize_matches_torchvision_resize_on_pil():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (37, 61, 3), dtype=np.uint8))
    for size in [(16, 24), (64, 64), (128, 96)]:  # shrink (antialiased) and enlarge
        ours = np.asarray(resize_bilinear(img, size))
        theirs = np.asarray(TF.resize(img, list(size)))
        np.testing.assert_array_equal(ours, theirs)
        pipeline = transforms.Compose(
            [
                transforms.Resize(size),
                transforms.ToTensor(),
                transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )
        assert torch.equal(to_network_input(img, size), pipeline(img))


def test_clips_are_consecutive_and_the_last_holds_the_remainder():
    assert clip_bounds(20, 9) == [(0, 9), (9, 18), (18, 20)]
    assert clip_bounds(9, 9) == [(0, 9)]
    assert clip_bounds(4, 9) == [(0, 4)]


def _spec(root: Path, name: str) -> VideoSpec:
    return VideoSpec(name, root / "frame" / name, root / "flow" / name, (".jpg",), (".jpg", ".png"))


def test_flows_pair_with_frames_by_name(tmp_path):
    make_video(tmp_path, "tail", stems(4), stems(3))
    video = pair_video(_spec(tmp_path, "tail"), drop_tail=False)
    assert video.stems == stems(4)
    assert [p.stem for p in video.flows] == ["00000", "00001", "00002", "00002"]
    assert pair_video(_spec(tmp_path, "tail"), drop_tail=True).stems == stems(3)
    # a gap in the middle: by name, not by position (frame 00002 must not take flow 00003)
    make_video(tmp_path, "gap", stems(4), ["00000", "00001", "00003"], flow_ext=".png")
    video = pair_video(_spec(tmp_path, "gap"), drop_tail=False)
    assert [p.stem for p in video.flows] == ["00000", "00001", "00001", "00003"]
    # drop tail leaves out the last frame, not the frame without a flow (as the release)
    assert pair_video(_spec(tmp_path, "gap"), drop_tail=True).stems == stems(3)


def test_drop_tail_leaves_out_the_last_frame_even_with_its_own_flow(tmp_path):
    make_video(tmp_path, "full", stems(4), stems(4))  # N frames and N flows
    dropped = pair_video(_spec(tmp_path, "full"), drop_tail=True)
    assert dropped.stems == stems(3)  # N - 1 masks, as the release writes
    assert [p.stem for p in dropped.flows] == stems(3)
    assert pair_video(_spec(tmp_path, "full"), drop_tail=False).stems == stems(4)


def test_drop_tail_is_the_dataset_default_and_no_drop_tail_keeps_the_last_frame(tmp_path):
    from inference.config import TestConfig, build_parser
    from inference.runner import plan_benchmark

    root = tmp_path / "data"
    make_video(root / "FBMS-59" / "test", "v", stems(3), stems(3), flow_ext=".png")
    bench = resolve_benchmark("FBMS-59", root)
    for flags, expected in (([], 2), (["--drop_tail"], 2), (["--no-drop_tail"], 3)):
        drop_tail = build_parser().parse_args(flags).drop_tail
        jobs = plan_benchmark(bench, TestConfig(output_dir=str(tmp_path), drop_tail=drop_tail))
        assert len(jobs[0].video.frames) == expected, flags


@pytest.mark.parametrize(
    ("frames", "flows", "expected"),
    [
        (stems(5), stems(3), "has 5 frames and 3 flows"),
        (stems(3), stems(4), "flow 00003.jpg matches no frame"),
        (stems(3), ["00001", "00002"], "frame 00000.jpg has no flow"),
        ([], [], "empty video"),
    ],
)
def test_pairing_errors_name_the_video(tmp_path, frames, flows, expected):
    make_video(tmp_path, "v", frames, flows)
    (tmp_path / "frame" / "v").mkdir(parents=True, exist_ok=True)
    with pytest.raises(InputError, match=expected) as err:
        pair_video(_spec(tmp_path, "v"), drop_tail=False)
    message = str(err.value)
    assert str(tmp_path / "frame" / "v") in message or str(tmp_path / "flow" / "v") in message
    assert "\n" not in str(err.value)


def test_registry_layouts(tmp_path):
    assert set(BENCHMARKS) == {
        "DAVIS16", "FBMS-59", "YO2SEG", "LongVideos", "ViSal", "SegTrack-V2", "DAVSOD",
        "MCL", "Easy-35",
    }  # fmt: skip
    (tmp_path / "LongVideos" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "LongVideos" / "Flow").mkdir()
    bench = resolve_benchmark("LongVideos", tmp_path)
    assert (bench.frame_exts, bench.flow_exts, bench.drop_tail) == ((".jpg",), (".png",), True)
    for name in ("Easy-35", "DAVSOD"):
        assert (BENCHMARKS[name].frames, BENCHMARKS[name].frame_ext) == ("test/frame", ".png")
    assert not BENCHMARKS["DAVIS16"].drop_tail and BENCHMARKS["FBMS-59"].drop_tail
    with pytest.raises(InputError, match="SegTrack-V2 folder not found"):
        resolve_benchmark("SegTrack-V2", tmp_path)


# ---- post-processing -----------------------------------------------------------------


def _bilinear_align_corners(p: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """By hand: output pixel i samples input position i * (n_in - 1) / (n_out - 1)."""

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.arange(n_out, dtype=np.float64) * (n_in - 1) / (n_out - 1)
        lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
        return lo, lo + 1, pos - lo

    y0, y1, wy = axis(p.shape[0], size[0])
    x0, x1, wx = axis(p.shape[1], size[1])
    top = p[y0][:, x0] * (1 - wx) + p[y0][:, x1] * wx
    bottom = p[y1][:, x0] * (1 - wx) + p[y1][:, x1] * wx
    return top * (1 - wy[:, None]) + bottom * wy[:, None]


def test_postprocessing_matches_a_hand_computation():
    torch.manual_seed(0)
    prob = torch.rand(2, 1, 8, 8)
    sizes = ((5, 7), (12, 9))
    uvos = to_masks(prob, sizes, "UVOS")
    vsod = to_masks(prob, sizes, "VSOD")
    for k, size in enumerate(sizes):
        p = _bilinear_align_corners(prob[k, 0].double().numpy(), size)
        p = (p - p.min()) / (p.max() - p.min() + 1e-8)
        assert uvos[k].shape == size and uvos[k].dtype == torch.uint8
        far = np.abs(p - 0.5) > 1e-5  # float32 vs float64: compare away from the threshold
        np.testing.assert_array_equal(uvos[k].numpy()[far], np.where(p > 0.5, 255, 0)[far])
        soft = np.floor(p * 255)
        assert np.abs(vsod[k].numpy().astype(int) - soft).max() <= 1
        # float32: 255 * range / (range + 1e-8) is 255 for a range near 1, 254.99.. -> 254 below
        assert vsod[k].min() == 0 and vsod[k].max() in (254, 255)
    small = to_masks(prob * 1e-3, sizes, "VSOD")
    assert all(m.max() == 254 for m in small)


# ---- runs of the network -------------------------------------------------------------


def _release_loop(model_path: Path, root: Path, video: str, task: str, drop_tail: bool):
    """The release's test loop (DESIGN.md §8) written plainly: position pairing, Resize,
    clips of 3, align-corners upsampling and min-max in numpy."""
    model = MTNet(variant_of_file(model_path))
    load_weights(model, model_path)
    model.eval()
    tf = transforms.Compose(
        [
            transforms.Resize((64, 64)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    frames = sorted((root / "frame" / video).iterdir())
    flows = sorted((root / "flow" / video).iterdir())
    if drop_tail:
        frames = frames[:-1]
    flows = (flows + flows[-1:] * (len(frames) - len(flows)))[: len(frames)]  # by position
    out = {}
    for s in range(0, len(frames), 3):
        load = [Image.open(p).convert("RGB") for p in frames[s : s + 3]]
        imgs = torch.stack([tf(img) for img in load])[None]
        fls = torch.stack([tf(Image.open(p).convert("RGB")) for p in flows[s : s + 3]])[None]
        with torch.no_grad():
            preds = model(imgs, fls)
        for path, img, pred in zip(frames[s : s + 3], load, preds, strict=True):
            size = (img.height, img.width)
            p = F.interpolate(pred[None], size=size, mode="bilinear", align_corners=True)
            p = p[0, 0].numpy()
            p = (p - p.min()) / (p.max() - p.min() + 1e-8)
            mask = (p > 0.5) * 255 if task == "UVOS" else np.clip(p * 255, 0, 255)
            out[f"{path.stem}.png"] = mask.astype(np.uint8)
    return out


def test_uvos_outputs_layout_binary_and_equal_to_the_release_loop(uvos_out, tiny_weights, syn):
    assert sorted(p.name for p in uvos_out.iterdir()) == ["a", "b"]
    assert sorted(p.name for p in (uvos_out / "a").iterdir()) == [DONE, *pngs(5)]
    assert sorted(p.name for p in (uvos_out / "b").iterdir()) == [DONE, *pngs(3)]
    assert (uvos_out.parent / "test_config.json").is_file()
    for video, size in (("a", (40, 56)), ("b", (30, 50))):
        for path in (uvos_out / video).glob("*.png"):
            mask = np.asarray(Image.open(path))
            assert mask.shape == size and mask.dtype == np.uint8
            assert set(np.unique(mask)) <= {0, 255}
        expected = _release_loop(tiny_weights, syn, video, "UVOS", drop_tail=False)
        for name, mask in expected.items():
            np.testing.assert_array_equal(np.asarray(Image.open(uvos_out / video / name)), mask)


def test_vsod_soft_maps_with_drop_tail(script, tiny_weights, syn, tmp_path):
    args = _args(tiny_weights, syn, tmp_path, "--task_name", "VSOD", "--drop_tail")
    assert script.main(args) == 0
    out = tmp_path / "MTNet" / "VSOD" / "SYN"
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]
    assert sorted(p.name for p in (out / "a").iterdir()) == [DONE, *pngs(4)]
    # b has a flow for each of its 3 frames: its last frame is left out all the same
    assert sorted(p.name for p in (out / "b").iterdir()) == [DONE, *pngs(2)]
    for video in ("a", "b"):
        expected = _release_loop(tiny_weights, syn, video, "VSOD", drop_tail=True)
        assert len(expected) == len(list((out / video).glob("*.png")))
        for name, soft in expected.items():
            mask = np.asarray(Image.open(out / video / name))
            np.testing.assert_array_equal(mask, soft)
            assert mask.min() == 0 and mask.max() >= 250 and len(np.unique(mask)) > 2


def test_skip_existing_resumes_without_redoing_finished_videos(
    script, uvos_out, tiny_weights, syn, tmp_path
):
    out = tmp_path / "MTNet" / "UVOS" / "SYN"
    shutil.copytree(uvos_out, out)  # a finished run and its record...
    shutil.copy(uvos_out.parent / "test_config.json", out.parent / "test_config.json")
    (out / "a" / "00004.png").unlink()  # ...interrupted in video a
    finished = {p: p.stat().st_mtime_ns for p in (out / "b").iterdir()}
    assert script.main(_args(tiny_weights, syn, tmp_path, "--skip_existing")) == 0
    assert sorted(p.name for p in (out / "a").iterdir()) == [DONE, *pngs(5)]
    assert finished == {p: p.stat().st_mtime_ns for p in (out / "b").iterdir()}
    _assert_same_files(out, uvos_out)


def test_torchrun_shards_videos_and_writes_the_same_files(uvos_out, tiny_weights, syn, tmp_path):
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "test.py", *_args(tiny_weights, syn, tmp_path),
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "on 2 processes" in run.stderr
    _assert_same_files(tmp_path / "MTNet" / "UVOS" / "SYN", uvos_out)


def test_paths_with_spaces_and_non_ascii(script, uvos_out, tiny_weights, syn, tmp_path):
    data = tmp_path / "my dätä" / "SYN set"
    shutil.copytree(syn, data)
    out = tmp_path / "out put ü"
    assert script.main(_args(tiny_weights, data, out)) == 0
    _assert_same_files(out / "MTNet" / "UVOS" / "SYN set", uvos_out)


def test_shared_davis_video(script, tiny_weights, davis_val, tmp_path):
    video = "motocross-jump"  # 40 frames, 39 flows: the last frame reuses flow 00038
    args = [
        "--test_model",
        str(tiny_weights),
        "--test_dataset",
        "DAVIS16",
        "--root",
        str(davis_val.parent.parent),
    ]
    args += ["--output_dir", str(tmp_path), "--videos", video, "--device", "cpu", *SIZE]
    args += ["--num_workers", "1"]
    assert script.main(args) == 0
    out = tmp_path / "MTNet" / "UVOS" / "DAVIS16" / video
    assert sorted(p.name for p in out.iterdir()) == [DONE, *pngs(40)]
    mask = np.asarray(Image.open(out / "00039.png"))
    assert mask.shape == (480, 854) and set(np.unique(mask)) <= {0, 255}


# ---- user errors: one line naming the path, exit status 2 ----------------------------


def _error_line(script, capsys, args: list[str]) -> str:
    assert script.main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("test.py: error: ")
    return line


def test_error_missing_and_wrong_checkpoints(script, capsys, syn, tmp_path):
    missing = tmp_path / "nope.pth"
    assert str(missing) in _error_line(script, capsys, _args(missing, syn, tmp_path))
    wrong = tmp_path / "wrong.pth"
    torch.save({"something": torch.zeros(1)}, wrong)
    assert str(wrong) in _error_line(script, capsys, _args(wrong, syn, tmp_path))


def test_error_missing_dataset_folder(script, capsys, tiny_weights, tmp_path):
    args = _args(tiny_weights, tmp_path / "none", tmp_path)
    assert str(tmp_path / "none") in _error_line(script, capsys, args)
    args = _args(tiny_weights, "DAVIS16", tmp_path, "--root", str(tmp_path))
    line = _error_line(script, capsys, args)
    assert str(tmp_path / "DAVIS16" / "val" / "frame") in line


def test_error_unreadable_image(script, capsys, tiny_weights, tmp_path):
    make_video(tmp_path / "BAD", "v", stems(4), stems(3))
    broken = tmp_path / "BAD" / "flow" / "v" / "00001.jpg"
    broken.write_bytes(b"not a jpeg")
    line = _error_line(script, capsys, _args(tiny_weights, tmp_path / "BAD", tmp_path / "o"))
    assert str(broken) in line and "cannot read this image" in line


def test_error_empty_video_and_bad_counts(script, capsys, tiny_weights, tmp_path):
    make_video(tmp_path / "E", "full", stems(2), stems(1))
    make_video(tmp_path / "E", "empty", [], [])
    line = _error_line(script, capsys, _args(tiny_weights, tmp_path / "E", tmp_path / "o"))
    assert str(tmp_path / "E" / "frame" / "empty") in line and "empty video" in line
    make_video(tmp_path / "C", "short", stems(4), stems(2))
    line = _error_line(script, capsys, _args(tiny_weights, tmp_path / "C", tmp_path / "o"))
    assert str(tmp_path / "C" / "flow" / "short") in line and "4 frames and 2 flows" in line


def test_error_from_the_command_line_is_one_line_and_exit_2(syn, tmp_path):
    missing = tmp_path / "missing.pth"
    cmd = [sys.executable, "test.py", *_args(missing, syn, tmp_path)]
    run = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("test.py: error: ") and str(missing) in lines[-1]
