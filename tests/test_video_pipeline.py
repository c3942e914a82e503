"""test.py --video and the API share one pipeline: lossless work frames (the API on decoded
frames equals the CLI), a record per video beside its masks, FlowSettings used whole
(raft_iters included), safe folder names for any video name."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models.optical_flow import raft_small

from inference import MTNetPredictor, config
from inference.weights_args import RANDOM_SEED
from model import build_mtnet
from tests.synthetic_videos import make_video, stems
from util.image import read_grey
from util.layout import OutputLayout, safe_name
from util.sample import make_clip as sample_clip
from util.video import iter_frames, write_video

RUN = ["--device", "cpu", "--num_workers", "0", "--test_length", "3", "--test_size", "64", "64"]


@pytest.fixture(autouse=True)
def no_default_weights(tmp_path, monkeypatch):
    """No saves/mtnet.pth: --video runs the seeded untrained network."""
    monkeypatch.setattr(config, "DEFAULT_MODEL", str(tmp_path / "saves" / "mtnet.pth"))


@pytest.fixture(scope="module")
def predictor() -> MTNetPredictor:
    model = build_mtnet(device="cpu", seed=RANDOM_SEED)  # test.py's untrained network
    return MTNetPredictor(model, "UVOS", (64, 64), clip_length=3)


def make_clip(path: Path, count: int, seed: int = 0) -> Path:
    """An MP4 of ``count`` frames of the sample's kind (a disc over a panning texture)."""
    frames, _ = sample_clip(count, size=(96, 128), seed=seed)
    return write_video(frames, path, fps=8)


def masks_of(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem: read_grey(p) for p in sorted(folder.glob("*.png"))}


def test_the_api_on_decoded_frames_equals_test_py_video(script, predictor, tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", count=5)
    out = tmp_path / "out"
    assert script.main(["--video", str(clip), "--output_dir", str(out), *RUN]) == 0
    written = masks_of(out / "MTNet" / "UVOS_videos" / "clip")
    assert list(written) == stems(5)
    assert "5/5" in capsys.readouterr().err  # the bar counts frames

    ours = list(predictor.segment(list(iter_frames(clip)), None))
    assert len(ours) == 5
    for (name, mask), computed in zip(written.items(), ours, strict=True):
        assert np.array_equal(mask, computed), name

    work = out / "MTNet" / "work" / "clip"
    assert sorted(p.name for p in (work / "frame").iterdir()) == [f"{s}.png" for s in stems(5)]
    for path, frame in zip(
        sorted((work / "frame").iterdir()), list(iter_frames(clip)), strict=True
    ):
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), frame)  # lossless
    assert json.loads((work / "source.json").read_text())["frame_format"] == "png"
    record = json.loads((out / "MTNet" / "UVOS_videos" / "clip" / "test_config.json").read_text())
    assert record["provenance"]["frames"] == "png"
    assert record["provenance"]["flow"] == {"method": "dis"}


def test_a_work_folder_of_the_old_form_is_remade(script, tmp_path, caplog, capsys):
    clip = make_clip(tmp_path / "clip.mp4", count=4)
    out = tmp_path / "out"
    args = ["--video", str(clip), "--output_dir", str(out), *RUN]
    assert script.main(args) == 0
    masks = masks_of(out / "MTNet" / "UVOS_videos" / "clip")
    work = out / "MTNet" / "work" / "clip"
    # as an older version left it: JPEG frames, no frame format in its record
    for path in (work / "frame").iterdir():
        cv2.imwrite(str(path.with_suffix(".jpg")), cv2.imread(str(path)))
        path.unlink()
    manifest = json.loads((work / "source.json").read_text())
    del manifest["frame_format"]
    (work / "source.json").write_text(json.dumps(manifest))
    (out / "MTNet" / "UVOS_videos" / "clip" / "test_config.json").unlink()  # kept elsewhere
    (out / "MTNet" / "UVOS_videos" / "clip" / "00003.png").unlink()  # then interrupted
    capsys.readouterr()
    assert script.main([*args, "--skip_existing"]) == 2  # masks of unknown making: no mixing
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no record of the run that wrote the masks there" in err[0]
    assert sorted(p.suffix for p in (work / "frame").iterdir()) == [".jpg"] * 4  # untouched
    with caplog.at_level(logging.INFO):
        assert script.main(args) == 0
    assert any("frame format changed" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in (work / "frame").iterdir()) == [f"{s}.png" for s in stems(4)]
    again = masks_of(out / "MTNet" / "UVOS_videos" / "clip")
    assert all(np.array_equal(masks[k], again[k]) for k in masks)


def test_skip_existing_redoes_a_video_whose_source_changed(script, tmp_path):
    """Another video under the same name: its frames are decoded anew, and its masks made
    anew although the settings (the record) are the same."""
    clip, out = tmp_path / "clip.mp4", tmp_path / "out"
    args = ["--video", str(clip), "--output_dir", str(out), *RUN]
    make_clip(clip, count=3, seed=0)
    assert script.main(args) == 0
    before = masks_of(out / "MTNet" / "UVOS_videos" / "clip")
    make_clip(clip, count=3, seed=1)
    assert script.main([*args, "--skip_existing"]) == 0
    after = masks_of(out / "MTNet" / "UVOS_videos" / "clip")
    assert script.main(["--video", str(clip), "--output_dir", str(tmp_path / "fresh"), *RUN]) == 0
    fresh = masks_of(tmp_path / "fresh" / "MTNet" / "UVOS_videos" / "clip")
    assert list(after) == list(fresh) == list(before) == stems(3)
    assert all(np.array_equal(after[k], fresh[k]) for k in fresh)
    assert any(not np.array_equal(after[k], before[k]) for k in fresh)  # another video


def test_each_video_keeps_its_own_record_beside_its_masks(script, tmp_path):
    out = tmp_path / "out"
    for name, seed in (("first", 0), ("second", 1)):
        clip = make_clip(tmp_path / f"{name}.mp4", count=3, seed=seed)
        assert script.main(["--video", str(clip), "--output_dir", str(out), *RUN]) == 0
    for name in ("first", "second"):
        record_path = OutputLayout.of(out, "MTNet", "UVOS").clip_record_path(name)
        assert record_path == out / "MTNet" / "UVOS_videos" / name / "test_config.json"
        record = json.loads(record_path.read_text())
        assert record["video"] == str(tmp_path / f"{name}.mp4")
    assert not (out / "MTNet" / "UVOS" / "test_config.json").exists()  # the data sets' record


def test_raft_iters_changes_the_flows_and_the_record(script, tmp_path, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), weights)
    clip = make_clip(tmp_path / "clip.mp4", count=3)
    out = tmp_path / "out"
    args = ["--video", str(clip), "--output_dir", str(out), *RUN, "--flow_method", "raft"]
    args += ["--raft_weights", str(weights), "--raft_model", "raft_small"]
    work = out / "MTNet" / "work" / "clip"
    record_path = out / "MTNet" / "UVOS_videos" / "clip" / "test_config.json"

    made = {}
    for iters in (1, 2):
        assert script.main([*args, "--raft_iters", str(iters)]) == 0
        made[iters] = (
            {p.name: p.read_bytes() for p in sorted((work / "flow").glob("[!.]*"))},
            json.loads(record_path.read_text())["provenance"]["flow"],
            json.loads((work / "source.json").read_text())["flow"],
        )
    flows_1, record_1, source_1 = made[1]
    flows_2, record_2, source_2 = made[2]
    assert list(flows_1) == list(flows_2) == ["00000.jpg", "00001.jpg"]
    assert all(flows_1[k] != flows_2[k] for k in flows_1)  # other flows
    assert (record_1["raft_iters"], record_2["raft_iters"]) == (1, 2)  # another record
    assert (source_1["raft_iters"], source_2["raft_iters"]) == (1, 2)

    (out / "MTNet" / "UVOS_videos" / "clip" / "00002.png").unlink()  # an interrupted run
    capsys.readouterr()
    assert script.main([*args, "--raft_iters", "1", "--skip_existing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the masks there were begun with flow " in err[0]
    kept = {p.name: p.read_bytes() for p in sorted((work / "flow").glob("[!.]*"))}
    assert kept == flows_2  # refused before the work folder changed


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("..", "__"),
        (".", "_"),
        ("...", "___"),
        ("", "_"),
        (".hidden", "_hidden"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("a\nb\x00c\x7f", "a_b_c_"),
        ("clip", "clip"),
        ("a b", "a b"),
        ("vidéo-ü.v2", "vidéo-ü.v2"),
    ],
)
def test_safe_name_rule(name, safe):
    assert safe_name(name) == safe
    assert safe_name(safe) == safe  # applying it twice changes nothing


def test_a_video_named_dot_dot_stays_in_its_own_folders(script, tmp_path, caplog):
    clip = tmp_path / "in" / "...mp4"  # stem ".."
    clip.parent.mkdir()
    make_clip(clip, count=3)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert script.main(["--video", str(clip), "--output_dir", str(out), *RUN]) == 0
    renames = [r.getMessage() for r in caplog.records if "not a safe folder name" in r.getMessage()]
    assert len(renames) == 1 and "'..'" in renames[0] and "'__'" in renames[0]
    model_root = out / "MTNet"
    assert sorted(p.name for p in (model_root / "UVOS_videos").iterdir()) == ["__"]
    assert sorted(masks_of(model_root / "UVOS_videos" / "__")) == stems(3)
    assert sorted(p.name for p in (model_root / "work").iterdir()) == ["__"]
    assert (model_root / "UVOS_overlay" / "__.mp4").is_file()
    assert not list(model_root.glob("*.png")) and not list(out.glob("*.png"))
    assert not (model_root / "UVOS_videos" / "test_config.json").exists()


def test_a_data_set_video_with_a_control_character_gets_the_same_rule(script, tmp_path):
    data = tmp_path / "SET"
    make_video(data, "v\x01", stems(3), stems(2))
    args = ["--random_weights", "--test_dataset", str(data), "--output_dir", str(tmp_path / "o")]
    assert script.main([*args, *RUN]) == 0
    task = tmp_path / "o" / "MTNet" / "UVOS"
    assert sorted(p.name for p in (task / "SET").iterdir()) == ["v_"]
    assert sorted(masks_of(task / "SET" / "v_")) == stems(3)
