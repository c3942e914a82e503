"""dataset.prepare: the original DAVIS-2016 and YouTube-VOS layouts in, train/test layout out.

Small synthetic copies of both downloads (64x64 frames, two objects), then two training
iterations and a test.py run on the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import train as train_script
from dataset.prepare import PrepareOptions, main, prepare_davis2016, prepare_youtube_vos
from dataset.prepared import choose_objects
from tests.conftest import load_script
from tests.train_helpers import tiny_args
from util.errors import InputError
from util.flow import DISFlow, FlowSettings, render_flow
from util.image import read_rgb_array, write_image

REPO = Path(__file__).resolve().parents[1]
SIZE = 64
OPTIONS = PrepareOptions(progress=False)
# YouTube-VOS video -> (frames in JPEGImages, annotated frames); 2c4d has one annotation
YTVOS = {"0a2f": (16, (0, 5, 10, 15)), "1b3c": (11, (0, 5, 10)), "2c4d": (6, (0,))}
DAVIS = {"train": {"bear": 5, "boat": 4}, "val": {"cows": 4}}


def _scene(i: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i of a panning textured scene with two moving objects, and its object ids:
    1 = a small square, 2 = a larger rectangle (absent from frame 10 of every video)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (SIZE // 4, SIZE // 4 + 8, 3)).repeat(4, 0).repeat(4, 1)
    frame = texture[:, i % 32 : i % 32 + SIZE].astype(np.uint8).copy()
    ids = np.zeros((SIZE, SIZE), dtype=np.uint8)
    ids[8 + i : 18 + i, 6:16] = 1
    if i != 10:
        ids[30:50, 20 + i : 36 + i] = 2
    frame[ids == 1] = (240, 220, 30)
    frame[ids == 2] = (30, 90, 230)
    return frame, ids


def _palette_png(path: Path, ids: np.ndarray) -> None:
    image = Image.fromarray(ids, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_davis(src: Path) -> Path:
    """``src/DAVIS/``: JPEGImages/480p, Annotations/480p (grey 0/255), ImageSets/480p."""
    root = src / "DAVIS"
    for split, videos in DAVIS.items():
        lines = []
        for seed, (video, frames) in enumerate(videos.items()):
            for i in range(frames):
                frame, ids = _scene(i, seed)
                jpg = root / "JPEGImages" / "480p" / video / f"{i:05d}.jpg"
                png = root / "Annotations" / "480p" / video / f"{i:05d}.png"
                jpg.parent.mkdir(parents=True, exist_ok=True)
                png.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(frame).save(jpg, quality=90)
                Image.fromarray((ids > 0).astype(np.uint8) * 255).save(png)
                lines.append(
                    f"/JPEGImages/480p/{video}/{i:05d}.jpg /Annotations/480p/{video}/{i:05d}.png"
                )
        listing = root / "ImageSets" / "480p" / f"{split}.txt"
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text("\n".join(lines) + "\n")
    return src


def make_ytvos(src: Path) -> Path:
    """``src/train/``: JPEGImages (every frame), Annotations (palette PNGs, every fifth),
    meta.json."""
    meta: dict = {"videos": {}}
    for seed, (video, (frames, annotated)) in enumerate(YTVOS.items(), 10):
        for i in range(frames):
            frame, ids = _scene(i, seed)
            jpg = src / "train" / "JPEGImages" / video / f"{i:05d}.jpg"
            jpg.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame).save(jpg, quality=90)
            if i in annotated:
                _palette_png(src / "train" / "Annotations" / video / f"{i:05d}.png", ids)
        names = [f"{i:05d}" for i in annotated]
        objects = {
            "1": {"category": "ape", "frames": names},
            "2": {"category": "cat", "frames": names},
        }
        meta["videos"][video] = {"objects": objects}
    (src / "train" / "meta.json").write_text(json.dumps(meta))
    return src


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("downloads")
    return make_davis(base / "davis"), make_ytvos(base / "ytvos")


@pytest.fixture(scope="module")
def prepared(downloads, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "data"
    davis, ytvos = downloads
    assert main(["davis2016", "--src", str(davis), "--out", str(out), "--no_progress"]) == 0
    assert main(["youtube-vos", "--src", str(ytvos), "--out", str(out), "--no_progress"]) == 0
    return out


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _expected_flow(tmp: Path, frame1: Path, frame2: Path) -> bytes:
    """util.flow's DIS flow image of a frame pair, written as util.flow writes it."""
    flow = DISFlow()(read_rgb_array(frame1), read_rgb_array(frame2))
    return write_image(tmp / f"{frame1.stem}_{frame2.stem}.jpg", render_flow(flow)).read_bytes()


def test_davis2016_frames_masks_and_one_flow_per_frame(downloads, prepared, tmp_path):
    src = downloads[0] / "DAVIS"
    for split, videos in DAVIS.items():
        base = prepared / "DAVIS16" / split
        assert _names(base / "frame") == sorted(videos)
        for video, n in videos.items():
            stems = [f"{i:05d}" for i in range(n)]
            assert _names(base / "frame" / video) == [f"{s}.jpg" for s in stems]
            assert _names(base / "mask" / video) == [f"{s}.png" for s in stems]
            assert _names(base / "flow" / video) == [f"{s}.jpg" for s in stems]
            for s in stems:
                source = src / "JPEGImages" / "480p" / video / f"{s}.jpg"
                assert (base / "frame" / video / f"{s}.jpg").read_bytes() == source.read_bytes()
                mask = np.asarray(Image.open(base / "mask" / video / f"{s}.png"))
                gt = np.asarray(Image.open(src / "Annotations" / "480p" / video / f"{s}.png"))
                np.testing.assert_array_equal(mask, np.where(gt > 0, 255, 0))
            flows = base / "flow" / video
            for a, b in zip(stems, stems[1:], strict=False):
                frames = src / "JPEGImages" / "480p" / video
                expected = _expected_flow(tmp_path, frames / f"{a}.jpg", frames / f"{b}.jpg")
                assert (flows / f"{a}.jpg").read_bytes() == expected, (video, a)
            # the last frame's flow: a copy of the preceding one
            assert (flows / f"{stems[-1]}.jpg").read_bytes() == (
                flows / f"{stems[-2]}.jpg"
            ).read_bytes()
    marker = json.loads((prepared / "DAVIS16" / "train" / ".prepare" / "bear.json").read_text())
    assert marker["status"] == "done" and marker["record"]["flow"]["method"] == "dis"


def test_youtube_vos_keeps_annotated_frames_with_flows_between_them(downloads, prepared, tmp_path):
    src = downloads[1] / "train"
    base = prepared / "YouTube2SEG" / "train"
    assert _names(base / "frame") == ["0a2f", "1b3c"]  # 2c4d: one annotated frame, skipped
    for video in ("0a2f", "1b3c"):
        stems = [f"{i:05d}" for i in YTVOS[video][1]]
        for kind, suffix in (("frame", ".jpg"), ("flow", ".jpg"), ("mask", ".png")):
            assert _names(base / kind / video) == [s + suffix for s in stems], kind
        for s in stems:  # union of both objects by default
            ids = np.asarray(Image.open(src / "Annotations" / video / f"{s}.png"))
            mask = np.asarray(Image.open(base / "mask" / video / f"{s}.png"))
            np.testing.assert_array_equal(mask, np.where(ids > 0, 255, 0))
    frames = src / "JPEGImages" / "0a2f"
    expected = _expected_flow(tmp_path, frames / "00005.jpg", frames / "00010.jpg")
    assert (base / "flow" / "0a2f" / "00005.jpg").read_bytes() == expected


def test_object_rules_by_hand():
    a = np.array([[0, 1, 1], [2, 2, 0]], dtype=np.uint8)
    b = np.array([[3, 3, 0], [2, 2, 2]], dtype=np.uint8)
    union = choose_objects([a, b], "union")
    np.testing.assert_array_equal(union[1], b > 0)
    largest = choose_objects([a, b], "largest")  # pixels: id 1: 2, id 2: 5, id 3: 2
    np.testing.assert_array_equal(largest[0], a == 2)
    np.testing.assert_array_equal(largest[1], b == 2)
    first = choose_objects([a, b], "first")
    np.testing.assert_array_equal(first[1], np.zeros_like(b, dtype=bool))  # id 1 absent
    tie = choose_objects([np.array([[1, 2]], dtype=np.uint8)], "largest")
    np.testing.assert_array_equal(tie[0], [[True, False]])  # a tie: the smaller id
    empty = choose_objects([np.zeros((2, 2), dtype=np.uint8)], "first")
    assert not empty[0].any()


def test_object_rule_flag_and_rerun_remakes_changed_videos(downloads, tmp_path):
    src = downloads[1]
    out = tmp_path / "data"
    largest = PrepareOptions(objects="largest", progress=False, videos=("1b3c",))
    assert prepare_youtube_vos(src, out, largest).made == 1
    mask = out / "YouTube2SEG" / "train" / "mask" / "1b3c"
    for s in ("00000", "00005", "00010"):
        ids = np.asarray(Image.open(src / "train" / "Annotations" / "1b3c" / f"{s}.png"))
        np.testing.assert_array_equal(np.asarray(Image.open(mask / f"{s}.png")), (ids == 2) * 255)
    first = PrepareOptions(objects="first", progress=False, videos=("1b3c",))
    assert prepare_youtube_vos(src, out, first).made == 1  # another rule: made again
    for s in ("00000", "00005", "00010"):  # 00000 holds both objects: first != union there
        ids = np.asarray(Image.open(src / "train" / "Annotations" / "1b3c" / f"{s}.png"))
        np.testing.assert_array_equal(np.asarray(Image.open(mask / f"{s}.png")), (ids == 1) * 255)
    assert prepare_youtube_vos(src, out, first).kept == 1


def test_rerun_skips_finished_videos_and_resumes_an_interrupted_one(downloads, tmp_path):
    src = downloads[0]
    out = tmp_path / "data"
    options = PrepareOptions(progress=False, videos=("bear", "cows"))
    first = prepare_davis2016(src, out, options)
    assert (first["train"].made, first["val"].made) == (1, 1)
    base = out / "DAVIS16" / "train"
    files = sorted(
        p
        for p in base.rglob("*")
        if p.is_file() and not p.name.startswith(".") and ".prepare" not in p.parts
    )
    stamps = {p: p.stat().st_mtime_ns for p in files}
    flow, mask = base / "flow" / "bear" / "00002.jpg", base / "mask" / "bear" / "00003.png"
    content = flow.read_bytes(), mask.read_bytes()

    again = prepare_davis2016(src, out, options)
    assert (again["train"].kept, again["train"].made) == (1, 0)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps

    # killed in the middle of bear: its record says started, two files are missing
    marker = base / ".prepare" / "bear.json"
    state = json.loads(marker.read_text())
    marker.write_text(json.dumps({**state, "status": "started"}))
    flow.unlink()
    mask.unlink()
    resumed = prepare_davis2016(src, out, options)
    assert (resumed["train"].made, resumed["val"].kept) == (1, 1)
    assert (flow.read_bytes(), mask.read_bytes()) == content
    last_flow = base / "flow" / "bear" / "00004.jpg"  # the copy is always made anew
    kept = [p for p in files if p not in (flow, mask, last_flow)]
    assert {p: p.stat().st_mtime_ns for p in kept} == {p: stamps[p] for p in kept}
    assert not [p for p in base.rglob(".*.tmp*")]  # atomic writes leave nothing behind


def test_output_not_made_by_prepare_is_never_overwritten(downloads, tmp_path):
    out = tmp_path / "data"
    foreign = out / "DAVIS16" / "train" / "flow" / "bear"
    foreign.mkdir(parents=True)
    (foreign / "00000.png").write_bytes(b"a flow made elsewhere")
    with pytest.raises(InputError, match="flow/bear: exists and was not made by dataset.prepare"):
        prepare_davis2016(downloads[0], out, PrepareOptions(progress=False, videos=("bear",)))
    assert (foreign / "00000.png").read_bytes() == b"a flow made elsewhere"


@pytest.mark.parametrize(
    ("source", "make", "extra", "expected"),
    [
        ("davis2016", None, [], "not a DAVIS-2016 folder; expected JPEGImages/480p/<video>/"),
        ("youtube-vos", None, [], "not a YouTube-VOS download; expected train/JPEGImages/<video>/"),
        ("davis2016", "davis", ["--videos", "nope"], "--videos nope: no such video"),
        ("davis2016", "davis", ["--flow_method", "raft"], "needs --raft_weights"),
        (
            "davis2016",
            "davis",
            ["--flow_method", "raft", "--raft_weights", "{tmp}/r.pth"],
            "RAFT weights file not found",
        ),  # fmt: skip
        ("youtube-vos", "no_frames", [], "1b3c: frame folder not found; expected train/"),
        ("davis2016", "no_split", [], "val.txt: split list not found"),
    ],
)
def test_errors_are_one_line_naming_the_expected_layout(
    downloads, tmp_path, capsys, source, make, extra, expected
):
    src = tmp_path / "src"
    src.mkdir()
    if make == "davis":
        src = downloads[0]
    elif make == "no_frames":
        make_ytvos(src)
        for p in sorted((src / "train" / "JPEGImages" / "1b3c").iterdir()):
            p.unlink()
        (src / "train" / "JPEGImages" / "1b3c").rmdir()
    elif make == "no_split":
        make_davis(src)
        (src / "DAVIS" / "ImageSets" / "480p" / "val.txt").unlink()
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    argv = [source, "--src", str(src), "--out", str(tmp_path / "out"), "--no_progress", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dataset.prepare: error: ") and expected in err[0]
    assert not (tmp_path / "out").exists()  # nothing written before the inputs are checked


def test_a_bad_raft_iters_is_one_line_before_any_work(tmp_path, capsys):
    argv = ["youtube-vos", "--src", str(tmp_path), "--out", str(tmp_path / "out")]
    assert main([*argv, "--flow_method", "raft", "--raft_iters", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dataset.prepare: error: --raft_iters 0: expected a positive int"]
    assert not (tmp_path / "out").exists()


def test_module_command_exit_status(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "dataset.prepare", "youtube-vos", "--src", str(tmp_path),
               "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"dataset.prepare: error: --src {tmp_path}: not a YouTube-VOS download; expected "
        "train/JPEGImages/<video>/<frame>.jpg and train/Annotations/<video>/<frame>.png "
        "(palette PNGs, one index per object)"
    ]


def test_prepared_data_trains_without_pretraining_and_tests(prepared, tmp_path, caplog):
    exp = tmp_path / "exp"
    common = {"val_dataset": "DAVIS16/val", "save_checkpoint_interval": 2, "log_image_interval": 2}
    pre = tiny_args(prepared, exp, "pre_train", train_dataset="YouTube2SEG/train", **common)
    assert train_script.main(pre) == 0
    main_args = tiny_args(prepared, exp, "main_train", train_dataset="DAVIS16/train", **common)
    assert train_script.main(main_args) == 0
    for stage in ("pre_train", "main_train"):
        run = exp / "MTNet" / stage
        log_text = (run / "train.log").read_text()
        assert "it 2/2" in log_text and (run / "best.pth").is_file(), stage
        assert f"{stage} starts from random weights" in log_text
    pre_log = (exp / "MTNet" / "pre_train" / "train.log").read_text()
    assert "2 training videos" in pre_log and "1 validation videos" in pre_log

    script = load_script("test.py")
    out = tmp_path / "out"
    args = ["--test_model", str(exp / "MTNet" / "main_train" / "best.pth"), "--root",
            str(prepared), "--test_dataset", "DAVIS16", "--output_dir", str(out), "--device",
            "cpu", "--num_workers", "0", "--test_length", "3", "--test_size", "64", "64"]  # fmt: skip
    assert script.main(args) == 0
    masks = out / "MTNet" / "UVOS" / "DAVIS16" / "cows"
    assert _names(masks) == [f"{i:05d}.png" for i in range(DAVIS["val"]["cows"])]
    assert np.asarray(Image.open(masks / "00000.png")).shape == (SIZE, SIZE)


def test_flow_options_are_part_of_the_record(downloads, tmp_path):
    # another flow method is another output: a rerun with RAFT settings must not keep DIS flows
    from dataset.prepared import SourceVideo, source_record

    video = SourceVideo("v", (downloads[0] / "DAVIS" / "ImageSets" / "480p" / "val.txt",), ())
    dis = source_record(video, OPTIONS, uses_objects=False)
    raft = source_record(
        video, PrepareOptions(FlowSettings(method="raft", raft_weights="r.pth")), False
    )
    assert dis["flow"] == {"method": "dis"}
    weights = str(Path("r.pth").resolve())  # the file, however it was named
    assert raft["flow"] == {
        "method": "raft", "raft_weights": weights, "raft_model": "raft_large", "raft_iters": 12
    }  # fmt: skip
    on_gpu = PrepareOptions(FlowSettings(method="raft", raft_weights="r.pth"), device="cuda")
    assert source_record(video, on_gpu, False) == raft  # the device does not change the record
