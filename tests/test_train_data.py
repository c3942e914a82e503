"""Training data of DESIGN.md §7: pairing by name, the clip sampler, the augmentation."""

from __future__ import annotations

import json
import logging
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

import train as train_script
from dataset.train_clips import TrainClips, item_rng, list_videos, pair_video, sample_clip_indices
from dataset.transforms import (
    AugParams,
    augment_clip,
    geometric,
    sample_aug_params,
)
from dataset.val_videos import ValClips, clip_starts
from tests.train_helpers import square_video, synthetic_root, tiny_args
from training.loader import ResumableBatches
from training.validate import evaluate
from util.errors import InputError
from util.image import denormalize
from util.layout import annotations_path, declare_sparse_masks

IDENTITY = (1.0, 1.0, 1.0, 1.0)


class ScriptedRng:
    """Stands in for a numpy Generator: returns scripted draws and checks their ranges."""

    def __init__(self, ints: list[int], uniform: float):
        self.ints = list(ints)
        self.uniform = uniform
        self.ranges: list[tuple[int, int]] = []

    def integers(self, low: int, high: int) -> int:
        self.ranges.append((low, high))
        return self.ints.pop(0)

    def random(self) -> float:
        return self.uniform


# --- pairing -----------------------------------------------------------------------------


def test_frame_without_flow_uses_preceding_flow(tmp_path):
    square_video(tmp_path, "v", frames=5, flows=4)
    video = pair_video(tmp_path, "v")
    assert [p.stem for p in video.flows] == ["00000", "00001", "00002", "00003", "00003"]
    assert [p.stem for p in video.masks] == [p.stem for p in video.frames]


def test_missing_mask_is_sparse_annotation_and_no_mask_at_all_names_the_folder(tmp_path, caplog):
    square_video(tmp_path, "v", frames=4)
    declare_sparse_masks(tmp_path)  # as dataset.prepare folder declares its sets
    (tmp_path / "mask" / "v" / "00002.png").unlink()
    with caplog.at_level(logging.INFO, logger="dataset.train_clips"):
        video = pair_video(tmp_path, "v")
    assert [m.stem if m else None for m in video.masks] == ["00000", "00001", None, "00003"]
    assert "video v: 3 of 4 frames have a mask" in caplog.text
    assert str(tmp_path / "mask" / "v" / "00002.png") in caplog.text
    for mask in (tmp_path / "mask" / "v").iterdir():
        mask.unlink()
    with pytest.raises(InputError, match=r"mask/v: no mask for any frame of video v"):
        pair_video(tmp_path, "v")


def test_dense_set_missing_one_mask_stops_naming_it(tmp_path):
    square_video(tmp_path, "v", frames=4)
    missing = tmp_path / "mask" / "v" / "00002.png"
    missing.unlink()
    for declared in (None, "dense"):  # no annotations.json, or one saying dense
        if declared:
            annotations_path(tmp_path).write_text('{"masks": "dense"}')
        with pytest.raises(InputError) as err:
            list_videos(tmp_path, min_frames=3)
        line = str(err.value)
        assert "\n" not in line and line.startswith(f"{missing}: mask not found;")
        assert "python -m dataset.prepare folder" in line
        assert f'{annotations_path(tmp_path)} holding {{"masks": "sparse"}}' in line
    declare_sparse_masks(tmp_path)  # the declaration is honoured
    (video,) = list_videos(tmp_path, min_frames=3)
    assert [m.stem if m else None for m in video.masks] == ["00000", "00001", None, "00003"]
    assert json.loads(annotations_path(tmp_path).read_text()) == {"masks": "sparse"}


def test_a_marker_of_another_kind_is_an_error_naming_it(tmp_path):
    square_video(tmp_path, "v", frames=4)
    (tmp_path / "mask" / "v" / "00002.png").unlink()
    for text in ('{"masks": "some"}', "not json", "[]"):
        annotations_path(tmp_path).write_text(text)
        with pytest.raises(InputError, match=r"annotations\.json: expected a JSON object"):
            pair_video(tmp_path, "v")


def test_dense_training_set_missing_a_mask_stops_train_py_before_work(
    tmp_path, capsys, train_py_test_sized
):
    root = synthetic_root(tmp_path)
    missing = root / "train" / "mask" / "b" / "00003.png"
    missing.unlink()
    assert train_script.main(tiny_args(root, tmp_path / "exp")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"train.py: error: {missing}: mask not found;")
    assert not (tmp_path / "exp").exists()  # nothing written


def test_annotated_frames_keep_the_flow_paired_in_the_whole_video(tmp_path):
    # 5 frames, 4 flows: the last frame takes the preceding frame's flow (DESIGN.md §8)
    square_video(tmp_path, "v", frames=5, flows=4)
    declare_sparse_masks(tmp_path)
    for t in (1, 3):
        (tmp_path / "mask" / "v" / f"0000{t}.png").unlink()
    video = pair_video(tmp_path, "v").annotated()
    assert [p.stem for p in video.frames] == ["00000", "00002", "00004"]
    assert [p.stem for p in video.flows] == ["00000", "00002", "00003"]
    assert [p.stem for p in video.masks] == ["00000", "00002", "00004"]
    (tmp_path / "mask" / "v" / "00002.png").unlink()  # the last two annotated: 0 and 4
    assert [p.stem for p in pair_video(tmp_path, "v").annotated().flows] == ["00000", "00003"]


def test_first_frame_without_flow_is_an_error(tmp_path):
    square_video(tmp_path, "v", frames=4)
    (tmp_path / "flow" / "v" / "00000.png").unlink()
    with pytest.raises(InputError, match=r"frame 00000\.jpg has no flow"):
        pair_video(tmp_path, "v")


def test_two_frames_without_flow_are_an_error(tmp_path):
    square_video(tmp_path, "v", frames=5, flows=3)
    with pytest.raises(InputError, match=r"v has 5 frames and 3 flows"):
        pair_video(tmp_path, "v")


def test_short_videos_are_skipped_with_a_note(tmp_path, caplog):
    square_video(tmp_path, "long", frames=4)
    square_video(tmp_path, "short", frames=2)
    with caplog.at_level(logging.INFO, logger="dataset.train_clips"):
        videos = list_videos(tmp_path, min_frames=3)
    assert [v.name for v in videos] == ["long"]
    assert "skipping video short" in caplog.text


# --- sampler -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "draws", "expected"),
    [
        # s = 2; i1 = min(2 + 1 + 1, 7, 9) = 4; i2 = min(4 + 3 + 1, 10 - 1, 9) = 8
        (10, [2, 1, 3], [2, 4, 8]),
        # s = 7 (L - J); i1 = min(7 + 0 + 1, 7, 9) = 7; i2 = min(7 + 3 + 1, 9, 9) = 9
        (10, [7, 0, 3], [7, 7, 9]),
        # L = 3: s = 0; i1 = min(0 + 2 + 1, 0, 2) = 0; i2 = min(0 + 0 + 1, 3 - 1, 2) = 1
        (3, [0, 2, 0], [0, 0, 1]),
        # L = 4, J = 3: s = 1; i1 = min(1 + 3 + 1, 1, 3) = 1; i2 = min(1 + 3 + 1, 4 - 1, 3) = 3
        (4, [1, 3, 3], [1, 1, 3]),
    ],
)
def test_sampler_formulas(length, draws, expected):
    rng = ScriptedRng(draws, uniform=0.9)
    assert sample_clip_indices(rng, length) == expected
    jump = min(length, 3)
    # s ~ U[0, L-J], the two gaps U[0, J], all inclusive (numpy's high is exclusive)
    assert rng.ranges == [(0, length - jump + 1), (0, jump + 1), (0, jump + 1)]


def test_sampler_reverses_with_probability_half():
    assert sample_clip_indices(ScriptedRng([2, 1, 3], uniform=0.49), 10) == [8, 4, 2]
    rng = np.random.default_rng(0)
    orders = Counter(
        "down" if (c := sample_clip_indices(rng, 20))[0] > c[-1] else "up" for _ in range(2000)
    )
    assert 0.45 < orders["down"] / 2000 < 0.55


def test_sampler_indices_stay_in_range():
    rng = np.random.default_rng(1)
    for length in range(3, 12):
        for _ in range(200):
            picks = sample_clip_indices(rng, length)
            assert all(0 <= i < length for i in picks)
            ordered = sorted(picks)
            assert ordered in (picks, picks[::-1])
    with pytest.raises(ValueError, match="needs 3 frames"):
        sample_clip_indices(rng, 2)


def test_aug_params_ranges():
    rng = np.random.default_rng(2)
    draws = [sample_aug_params(rng, (100, 60)) for _ in range(3000)]
    for p in draws:
        left, upper, right, lower = p.crop_box
        assert 1 <= 100 - (right - left) <= 30 and 1 <= 60 - (lower - upper) <= 30
        assert (left, upper) == ((100 - (right - left)) // 2, (60 - (lower - upper)) // 2)
        assert p.angle is None or -15 <= p.angle <= 14
        b, c, col, sharp = p.enhance
        assert 0.5 <= b <= 1.5 and 0.5 <= c <= 1.5 and 0 <= col <= 2 and 0 <= sharp <= 3
    assert 0.45 < np.mean([p.flip for p in draws]) < 0.55
    assert 0.17 < np.mean([p.angle is not None for p in draws]) < 0.23
    assert {p.angle for p in draws if p.angle is not None} == set(range(-15, 15))


# --- augmentation ------------------------------------------------------------------------


def _pattern(size=(90, 70)) -> np.ndarray:
    """An asymmetric L-shaped pattern: 255 inside, 0 outside, ``[H, W]`` uint8."""
    width, height = size
    a = np.zeros((height, width), dtype=np.uint8)
    a[10:55, 12:24] = 255
    a[45:55, 12:60] = 255
    return a


@pytest.mark.parametrize(
    "params",
    [
        AugParams(False, (0, 0, 90, 70), None, IDENTITY),
        AugParams(True, (0, 0, 90, 70), None, IDENTITY),
        AugParams(True, (7, 3, 80, 62), None, IDENTITY),
        AugParams(False, (14, 0, 90, 59), 13, IDENTITY),
        AugParams(True, (2, 12, 70, 66), -15, IDENTITY),
    ],
)
def test_frames_flows_masks_move_together(params):
    pattern = _pattern()
    rgb = Image.fromarray(np.repeat(pattern[..., None], 3, axis=2))
    mask = Image.fromarray(pattern)
    moved_rgb = np.asarray(geometric(rgb, params))
    moved_mask = np.asarray(geometric(mask, params))
    for channel in range(3):  # bicubic rotation on RGB and grey gives the same values
        np.testing.assert_array_equal(moved_rgb[..., channel], moved_mask)
    frames, flows, masks = augment_clip([rgb] * 3, [rgb] * 3, [mask] * 3, params, 64)
    assert frames.shape == flows.shape == (3, 3, 64, 64) and masks.shape == (3, 1, 64, 64)
    torch.testing.assert_close(frames, flows)
    agree = (denormalize(frames)[:, :1] > 0.5) == (masks > 0.5)
    assert agree.float().mean() > 0.97  # bilinear vs nearest differ on the edges only


def test_flip_moves_flow_pixels_without_changing_colours():
    rng = np.random.default_rng(3)
    flow = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    params = AugParams(True, (0, 0, 50, 40), None, IDENTITY)
    flipped = np.asarray(geometric(Image.fromarray(flow), params))
    np.testing.assert_array_equal(flipped, flow[:, ::-1])


def test_photometric_changes_frames_only():
    rng = np.random.default_rng(4)
    image = Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    mask = Image.fromarray(_pattern())
    plain = AugParams(True, (3, 4, 80, 60), 5, IDENTITY)
    enhanced = AugParams(True, (3, 4, 80, 60), 5, (1.4, 0.6, 0.0, 2.5))
    f0, fl0, m0 = augment_clip([image] * 2, [image] * 2, [mask] * 2, plain, 64)
    f1, fl1, m1 = augment_clip([image] * 2, [image] * 2, [mask] * 2, enhanced, 64)
    assert not torch.allclose(f0, f1)
    torch.testing.assert_close(f1[0], f1[1])  # one draw per clip
    torch.testing.assert_close(fl0, fl1)
    torch.testing.assert_close(m0, m1)


def test_rotation_makes_soft_mask_values():
    mask = Image.fromarray(_pattern())
    params = AugParams(False, (0, 0, 90, 70), 10, IDENTITY)
    _, _, masks = augment_clip([mask.convert("RGB")], [mask.convert("RGB")], [mask], params, 128)
    values = masks.unique()
    assert values.min() == 0 and values.max() <= 1
    assert ((values > 0) & (values < 1)).any()


def test_clip_dataset_is_a_function_of_seed_epoch_and_index(tmp_path):
    data = TrainClips(synthetic_root(tmp_path) / "train", imsize=64, seed=5)
    assert [v.name for v in data.videos] == ["a", "b", "c"]
    item = data[(3, 1)]
    assert item["imgs"].shape == (3, 3, 64, 64) and item["masks"].shape == (3, 1, 64, 64)
    again = data[(3, 1)]
    for key in item:
        torch.testing.assert_close(item[key], again[key])
    other = data[(4, 1)]
    assert any(not torch.equal(item[k], other[k]) for k in item)
    assert sample_clip_indices(item_rng(5, 3, 1), 5) == sample_clip_indices(item_rng(5, 3, 1), 5)


def test_resumable_batches_continue_where_they_stopped(tmp_path):
    data = list(range(7))
    full = list(ResumableBatches(data, 2, 0, 1, seed=9, start_it=0, max_iter=10))
    assert len(full) == 10 and all(len(b) == 2 for b in full)
    assert list(ResumableBatches(data, 2, 0, 1, seed=9, start_it=4, max_iter=10)) == full[4:]
    epochs = [[i for _, i in sum(full[e * 3 : e * 3 + 3], [])] for e in range(3)]
    assert all(len(set(e)) == 6 for e in epochs) and epochs[0] != epochs[1]
    ranks = [list(ResumableBatches(data, 2, r, 2, seed=9, start_it=0, max_iter=2)) for r in (0, 1)]
    seen = [i for batches in ranks for batch in batches for _, i in batch]
    assert len(seen) == 8 and set(seen) == set(data)  # 7 videos padded to 2 x 4
    with pytest.raises(ValueError, match="cannot fill a batch"):
        ResumableBatches(data, 8, 0, 1, seed=9, start_it=0, max_iter=1)


def test_val_clips_are_consecutive_and_resized(tmp_path):
    assert clip_starts(7, 3) == [(0, 3), (3, 3), (6, 1)]
    data = ValClips(synthetic_root(tmp_path) / "val", imsize=64)
    assert [(c.video, c.start, c.length) for c in data.clips] == [(0, 0, 3), (0, 3, 1), (1, 0, 3)]
    item = data[1]
    assert item["imgs"].shape == (1, 3, 64, 64) and set(item["masks"].unique().tolist()) <= {0, 1}
    assert len(ValClips(tmp_path / "data" / "val", 64, first_clip_only=True).clips) == 2


def test_shared_davis_pairs_and_loads(davis_val):
    videos = list_videos(davis_val, min_frames=3)
    assert len(videos) == 20
    for video in videos:
        assert video.flows[-1] == video.flows[-2]  # N frames, N-1 flows
    data = TrainClips(davis_val, imsize=64, seed=0)
    item = data[(0, 0)]
    assert item["imgs"].shape == (3, 3, 64, 64)
    val = ValClips(davis_val, imsize=64, max_videos=1, max_frames=4)
    assert len(val.clips) == 2 and val[0]["masks"].max() == 1


# --- validation with nothing to score ----------------------------------------------------


def _sparse_val(tmp_path, annotated: tuple[int, ...]):
    """``tmp_path/val`` with one video of 5 frames, masks on frames ``annotated`` only."""
    root = tmp_path / "val"
    square_video(root, "v", frames=5)
    declare_sparse_masks(root)
    for t in set(range(5)) - set(annotated):
        (root / "mask" / "v" / f"{t:05d}.png").unlink()
    return root


class _Never(torch.nn.Module):
    """Fails the test if validation runs the network."""

    def forward(self, imgs, flows):
        raise AssertionError("the network ran on a set with nothing to score")


def test_validation_with_nothing_to_score_is_refused_not_scored_zero(tmp_path):
    root = _sparse_val(tmp_path, annotated=(3, 4))
    cpu = torch.device("cpu")
    data = ValClips(root, 64, max_frames=3)  # frames 0-2: none has a mask
    assert data.scored_frames() == 0
    with pytest.raises(InputError, match=r"val: validation has no frame to score: none of the 3 "):
        evaluate(_Never(), data, cpu)
    first = ValClips(root, 64, first_clip_only=True)  # frame 0 has no mask
    assert first.scored_frames() == 0 and first.scored_frames(first_frame_only=True) == 0
    with pytest.raises(InputError, match=r"none of its 1 videos has a mask on frame 0"):
        evaluate(_Never(), first, cpu, first_frame_only=True)
    whole = ValClips(root, 64)  # all five frames: 3 and 4 are scored, frame 0 is not
    assert [whole.scored(i) for i in range(len(whole.clips))] == [[False] * 3, [True, True]]
    assert whole.scored_frames() == 2 and whole.scored_frames(first_frame_only=True) == 0
    with pytest.raises(InputError, match="no frame to score"):
        evaluate(_Never(), whole, cpu, first_frame_only=True)


def test_train_py_refuses_validation_with_nothing_to_score_at_start(
    tmp_path, capsys, train_py_test_sized
):
    root = synthetic_root(tmp_path)
    val = _sparse_val(tmp_path / "own", annotated=(2,))  # beside the synthetic sets
    argv = tiny_args(root, tmp_path / "exp", val_dataset=str(val), val_max_frames=2)
    assert train_script.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"train.py: error: {val}: validation has no frame")
    assert not (tmp_path / "exp").exists()  # refused before anything is written
