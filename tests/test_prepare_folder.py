"""dataset.prepare folder (own annotated videos) and dataset.prepare davis2016 on the
DAVIS-2017 trainval layout: small synthetic copies (64x64, a few frames) in, the training
and test layout out."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from dataset import prepare_folder as prepare_folder_module
from dataset.prepare import PrepareOptions, main, prepare_davis2016
from dataset.prepare_folder import choose_val_videos, prepare_folder
from dataset.train_clips import list_videos
from dataset.val_videos import ValClips
from util.errors import InputError
from util.image import write_image
from util.layout import annotations_path
from util.sample import random_clip
from util.video import write_video

SIZE = (64, 64)
OPTIONS = PrepareOptions(progress=False)


def _palette_png(path: Path, ids: np.ndarray) -> None:
    image = Image.fromarray(ids, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_source(src: Path) -> dict[str, list[np.ndarray]]:
    """Four videos: ``dense`` (a JPEG frame folder, 0/255 masks on every frame), ``sparse``
    (PNG frames, 0/1 masks on frames 0 and 3), ``palette`` (PNG frames, palette masks of two
    objects on frames 1 and 2) and ``movie`` (an mp4, masks on frames 0 and 4). Returns each
    video's ground-truth masks (0/255) by frame."""
    truth = {}
    for index, name in enumerate(("dense", "sparse", "palette", "movie")):
        frames, masks = random_clip(index, 5, SIZE, seed=7)
        truth[name] = masks
        if name == "movie":
            write_video(frames, src / "frames" / "movie.mp4", fps=10)
        for t, (frame, mask) in enumerate(zip(frames, masks, strict=True)):
            ext = ".jpg" if name == "dense" else ".png"
            if name != "movie":
                write_image(src / "frames" / name / f"{t:05d}{ext}", frame)
            out = src / "masks" / name / f"{t:05d}.png"
            if name == "dense":
                write_image(out, mask)
            elif name == "sparse" and t in (0, 3):
                write_image(out, (mask > 0).astype(np.uint8))
            elif name == "palette" and t in (1, 2):
                ids = (mask > 0).astype(np.uint8)
                ids[:, : SIZE[1] // 2] *= 2  # two objects: the left half is object 2
                _palette_png(out, ids)
            elif name == "movie" and t in (0, 4):
                write_image(out, mask)
    return truth


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, dict]:
    src = tmp_path_factory.mktemp("own") / "src"
    return src, make_source(src)


@pytest.fixture(scope="module")
def prepared(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    argv = ["folder", "--src", str(source[0]), "--out", str(out), "--name", "mine",
            "--val_videos", "sparse", "--no_progress"]  # fmt: skip
    assert main(argv) == 0
    return out / "mine"


def test_every_frame_kept_masks_where_annotated_flows_for_every_frame(source, prepared):
    src, truth = source
    annotated = {"dense": range(5), "sparse": (0, 3), "palette": (1, 2), "movie": (0, 4)}
    for name, frames_with_masks in annotated.items():
        split = "val" if name == "sparse" else "train"
        base = prepared / split
        ext = ".jpg" if name == "dense" else ".png"
        assert _names(base / "frame" / name) == [f"{t:05d}{ext}" for t in range(5)], name
        assert _names(base / "flow" / name) == [f"{t:05d}.jpg" for t in range(5)], name
        assert _names(base / "mask" / name) == [f"{t:05d}.png" for t in frames_with_masks]
        for t in frames_with_masks:  # 0/1, palette (two objects) and 0/255 all become 0/255
            mask = np.asarray(Image.open(base / "mask" / name / f"{t:05d}.png"))
            np.testing.assert_array_equal(mask, truth[name][t], err_msg=f"{name} {t}")
        other = prepared / ("train" if split == "val" else "val")
        assert not (other / "frame" / name).exists()  # a video is in one split only
    # the video file's frames: decoded once, stored losslessly (as OpenCV decodes them)
    capture = cv2.VideoCapture(str(src / "frames" / "movie.mp4"))
    for t in range(5):
        ok, bgr = capture.read()
        assert ok
        stored = np.asarray(Image.open(prepared / "train" / "frame" / "movie" / f"{t:05d}.png"))
        np.testing.assert_array_equal(stored, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    frames = prepared / "train" / "frame" / "dense"
    assert (frames / "00002.jpg").read_bytes() == (
        src / "frames" / "dense" / "00002.jpg"
    ).read_bytes()


def test_rerun_keeps_finished_videos_and_moves_a_video_to_its_new_split(source, tmp_path):
    src = source[0]
    first = prepare_folder(src, tmp_path, "mine", OPTIONS, val_videos=["palette"])
    assert (first["train"].made, first["val"].made) == (3, 1)
    again = prepare_folder(src, tmp_path, "mine", OPTIONS, val_videos=["palette"])
    assert (again["train"].kept, again["val"].kept, again["train"].made) == (3, 1, 0)
    moved = prepare_folder(src, tmp_path, "mine", OPTIONS, val_videos=["dense"])
    assert (moved["train"].made, moved["val"].made) == (1, 1)  # palette and dense moved
    assert _names(tmp_path / "mine" / "val" / "frame") == ["dense"]
    assert _names(tmp_path / "mine" / "train" / "frame") == ["movie", "palette", "sparse"]
    assert not (tmp_path / "mine" / "val" / ".prepare" / "palette.json").exists()
    record = json.loads((tmp_path / "mine" / ".decoded" / "movie.json").read_text())
    assert record["frames"] == 5  # decoded once, reused by the reruns


def test_validation_pick_is_seeded_printed_and_never_empty(source, tmp_path, caplog):
    names = [f"v{i}" for i in range(10)]
    pick = choose_val_videos(names, val_fraction=0.2)
    assert len(pick) == 2 and pick == choose_val_videos(list(reversed(names)), val_fraction=0.2)
    assert choose_val_videos(names[:3], val_fraction=0.01) != []  # at least one
    assert len(choose_val_videos(names[:2], val_fraction=0.99)) == 1  # one left to train on
    assert choose_val_videos(names, ["v3", "v1"]) == ["v1", "v3"]
    with caplog.at_level("INFO", logger="dataset.prepare_folder"):
        prepare_folder(source[0], tmp_path, "mine", OPTIONS)
    line = next(r.getMessage() for r in caplog.records if "validation videos" in r.getMessage())
    val = _names(tmp_path / "mine" / "val" / "frame")
    assert line == f"validation videos: {', '.join(val)}" and len(val) == 1


def _break(src: Path, how: str) -> None:
    if how == "masks_without_frames":
        write_image(src / "masks" / "ghost" / "00000.png", np.zeros(SIZE, np.uint8))
    elif how == "frames_without_masks":
        for mask in (src / "masks" / "palette").iterdir():
            mask.unlink()
    elif how == "mask_size":
        write_image(src / "masks" / "sparse" / "00001.png", np.zeros((32, 64), np.uint8))
    elif how == "movie_mask_size":
        write_image(src / "masks" / "movie" / "00001.png", np.zeros((64, 48), np.uint8))
    elif how == "mask_without_frame":
        write_image(src / "masks" / "sparse" / "00009.png", np.zeros(SIZE, np.uint8))
    elif how == "image_in_frames":
        write_image(src / "frames" / "stray.png", np.zeros((*SIZE, 3), np.uint8))
    elif how == "movie_mask_without_frame":  # the mp4 has 5 frames, 00000 ... 00004
        write_image(src / "masks" / "movie" / "00005.png", np.zeros(SIZE, np.uint8))
    elif how == "one_frame":  # the last video in name order: the others pass their checks
        for frame in sorted((src / "frames" / "sparse").iterdir())[1:]:
            frame.unlink()
        for mask in sorted((src / "masks" / "sparse").iterdir())[1:]:
            mask.unlink()


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("masks_without_frames", "video ghost: masks in "),
        ("frames_without_masks", "video palette: frames but no mask in "),
        ("mask_size", "video sparse: mask "),
        ("movie_mask_size", "expected the size of the video's frames (64x64)"),
        ("mask_without_frame", "video sparse: mask "),
        ("image_in_frames", "stray.png: an image directly in frames/"),
        ("movie_mask_without_frame", "video movie: mask "),
        ("one_frame", "video sparse: 1 frame; expected at least 2"),
        (None, "--val_videos nope: no such video"),
    ],
)
def test_bad_layouts_get_one_line_naming_the_video(tmp_path, capsys, how, expected):
    src = tmp_path / "src"
    make_source(src)
    _break(src, how)
    extra = ["--val_videos", "nope"] if how is None else []
    argv = ["folder", "--src", str(src), "--out", str(tmp_path / "out"), "--name", "x",
            "--no_progress", *extra]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dataset.prepare: error: ") and expected in err[0]
    if how == "mask_size":
        assert "is 64x32 px; expected the size of the video's frames (64x64)" in err[0]
    if how in ("mask_without_frame", "movie_mask_without_frame"):
        assert "has no frame" in err[0]
    assert not (tmp_path / "out").exists()  # every input checked before anything is written


def test_one_video_or_a_bad_name_is_refused(source, tmp_path):
    with pytest.raises(InputError, match="1 video; expected at least two"):
        choose_val_videos(["a"])
    with pytest.raises(InputError, match="--val_videos names every video"):
        choose_val_videos(["a", "b"], ["a", "b"])
    with pytest.raises(InputError, match="--name '../x': expected a plain folder name"):
        prepare_folder(source[0], tmp_path, "../x", OPTIONS)


# ---- DAVIS-2017 trainval ---------------------------------------------------------------

DAVIS17 = {"train": {"bear": 4}, "val": {"cows": 3}}


def make_davis2017(src: Path) -> Path:
    """``src/DAVIS/``: JPEGImages/480p, Annotations/480p (palette PNGs, two objects),
    ImageSets/2016 and ImageSets/2017 (video names, one per line), as in the trainval zip."""
    root = src / "DAVIS"
    for split, videos in DAVIS17.items():
        for index, (video, count) in enumerate(videos.items()):
            frames, masks = random_clip(index, count, SIZE, seed=11)
            for t, (frame, mask) in enumerate(zip(frames, masks, strict=True)):
                jpg = root / "JPEGImages" / "480p" / video / f"{t:05d}.jpg"
                write_image(jpg, frame)
                ids = (mask > 0).astype(np.uint8)
                ids[:, : int(np.median(np.nonzero(ids)[1]))] *= 2  # its left part: object 2
                _palette_png(root / "Annotations" / "480p" / video / f"{t:05d}.png", ids)
        for year in ("2016", "2017"):
            listing = root / "ImageSets" / year / f"{split}.txt"
            listing.parent.mkdir(parents=True, exist_ok=True)
            listing.write_text("\n".join(videos) + "\n")
    return src


def test_davis2017_trainval_layout_gives_the_union_of_objects(tmp_path):
    src = make_davis2017(tmp_path / "zip")
    summary = prepare_davis2016(src, tmp_path / "data", OPTIONS)
    assert (summary["train"].made, summary["val"].made) == (1, 1)
    for split, videos in DAVIS17.items():
        base = tmp_path / "data" / "DAVIS16" / split
        for video, count in videos.items():
            stems = [f"{t:05d}" for t in range(count)]
            assert _names(base / "flow" / video) == [f"{s}.jpg" for s in stems]
            for s in stems:
                ids = np.asarray(
                    Image.open(src / "DAVIS" / "Annotations" / "480p" / video / f"{s}.png")
                )
                assert set(np.unique(ids)) == {0, 1, 2}
                mask = np.asarray(Image.open(base / "mask" / video / f"{s}.png"))
                np.testing.assert_array_equal(mask, np.where(ids > 0, 255, 0))


def test_davis2017_without_2016_lists_names_both_layouts(tmp_path, capsys):
    src = make_davis2017(tmp_path / "zip")
    for listing in (src / "DAVIS" / "ImageSets" / "2016").iterdir():
        listing.unlink()
    (src / "DAVIS" / "ImageSets" / "2016").rmdir()
    argv = ["davis2016", "--src", str(src), "--out", str(tmp_path / "out"), "--no_progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "not a DAVIS-2016 folder" in err and "ImageSets/2016/{train,val}.txt" in err


# ---- the sparse-masks declaration ---------------------------------------------------------


def test_each_split_declares_sparse_masks_and_the_readers_honour_it(prepared):
    for split in ("train", "val"):
        assert json.loads((prepared / split / "annotations.json").read_text()) == {
            "masks": "sparse"
        }
    assert annotations_path(prepared / "val") == prepared / "val" / "annotations.json"
    (video,) = list_videos(prepared / "val", min_frames=1)  # "sparse": masks on 0 and 3
    assert [m.stem if m else None for m in video.masks] == ["00000", None, None, "00003", None]
    assert ValClips(prepared / "val", 64).scored_frames() == 2


def test_without_the_declaration_a_prepared_sparse_set_is_refused(prepared, tmp_path):
    copy = tmp_path / "val"
    shutil.copytree(prepared / "val", copy)
    (copy / "annotations.json").unlink()
    with pytest.raises(
        InputError, match=r"mask/sparse/00001\.png: mask not found; expected a mask"
    ):
        list_videos(copy, min_frames=1)


def test_a_rerun_declares_the_splits_an_earlier_run_made(source, tmp_path):
    # a set made before the declaration existed: a rerun of one video declares both splits
    prepare_folder(source[0], tmp_path, "mine", OPTIONS, val_videos=["sparse"])
    for split in ("train", "val"):
        annotations_path(tmp_path / "mine" / split).unlink()
    rerun = PrepareOptions(progress=False, videos=("dense",))  # a training video
    prepare_folder(source[0], tmp_path, "mine", rerun, val_videos=["sparse"])
    for split in ("train", "val"):
        assert json.loads(annotations_path(tmp_path / "mine" / split).read_text()) == {
            "masks": "sparse"
        }
    (video,) = list_videos(tmp_path / "mine" / "val", min_frames=1)
    assert [m is not None for m in video.masks] == [True, False, False, True, False]


def test_links_below_out_are_refused_before_anything_is_written(source, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    (out / "mine").mkdir(parents=True)
    os.symlink(outside, out / "mine" / "val")
    with pytest.raises(InputError, match=r"mine/val: a symbolic link inside --out"):
        prepare_folder(source[0], out, "mine", OPTIONS, val_videos=["sparse"])
    assert list(outside.iterdir()) == [] and _names(out / "mine") == ["val"]
    os.unlink(out / "mine" / "val")
    os.symlink(outside, out / "mine" / ".decoded")  # where video files are decoded
    with pytest.raises(InputError, match=r"mine/\.decoded: a symbolic link inside --out"):
        prepare_folder(source[0], out, "mine", OPTIONS, val_videos=["sparse"])
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("stated", [3, 1, 0])
def test_a_container_that_understates_its_frames_is_counted(tmp_path, monkeypatch, stated):
    # movie.mp4 has 5 frames and a mask on frame 4; some containers state an estimate
    src = tmp_path / "src"
    make_source(src)
    real = prepare_folder_module.probe_video
    monkeypatch.setattr(
        prepare_folder_module,
        "probe_video",
        lambda path: dataclasses.replace(real(path), frames=stated),
    )
    prepare_folder(src, tmp_path / "out", "x", OPTIONS, val_videos=["dense"])
    movie = tmp_path / "out" / "x" / "train"
    assert _names(movie / "frame" / "movie") == [f"{t:05d}.png" for t in range(5)]
    assert _names(movie / "mask" / "movie") == ["00000.png", "00004.png"]
    write_image(src / "masks" / "movie" / "00005.png", np.zeros(SIZE, np.uint8))
    with pytest.raises(InputError, match=r"video movie: mask .*00005\.png has no frame 00005"):
        prepare_folder(src, tmp_path / "again", "x", OPTIONS, val_videos=["dense"])
    assert not (tmp_path / "again").exists()


def test_a_container_that_overstates_its_frames_is_refused_before_any_write(tmp_path, monkeypatch):
    # movie.mp4 has 5 frames; a container stating 10 must not let a mask on frame 7 through
    src = tmp_path / "src"
    make_source(src)
    write_image(src / "masks" / "movie" / "00007.png", np.zeros(SIZE, np.uint8))
    real = prepare_folder_module.probe_video
    monkeypatch.setattr(
        prepare_folder_module,
        "probe_video",
        lambda path: dataclasses.replace(real(path), frames=10),
    )
    with pytest.raises(InputError, match=r"video movie: mask .*00007\.png has no frame 00007"):
        prepare_folder(src, tmp_path / "out", "x", OPTIONS, val_videos=["dense"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stem", ["4", "0004", "mask", "０００04", "²"])
def test_a_mask_not_named_as_a_decoded_frame_is_refused_without_reading_the_video(
    tmp_path, monkeypatch, stem
):
    src = tmp_path / "src"
    make_source(src)
    write_image(src / "masks" / "movie" / f"{stem}.png", np.zeros(SIZE, np.uint8))
    counted = []
    monkeypatch.setattr(prepare_folder_module, "count_frames", lambda path: counted.append(path))
    with pytest.raises(InputError, match=rf"video movie: mask .*{stem}\.png has no frame {stem} "):
        prepare_folder(src, tmp_path / "out", "x", OPTIONS, val_videos=["dense"])
    assert counted == [] and not (tmp_path / "out").exists()


def test_a_rerun_reads_no_video_file_again(tmp_path, monkeypatch):
    src = tmp_path / "src"
    make_source(src)
    prepare_folder(src, tmp_path / "out", "x", OPTIONS, val_videos=["dense"])
    read = []
    monkeypatch.setattr(prepare_folder_module, "count_frames", lambda path: read.append(path))
    monkeypatch.setattr(
        prepare_folder_module, "extract_frames", lambda path, *a, **k: read.append(path)
    )
    summary = prepare_folder(src, tmp_path / "out", "x", OPTIONS, val_videos=["dense"])
    assert read == [] and summary["train"].kept == 3 and summary["train"].made == 0
