"""The Python API: build_mtnet, MTNetPredictor.segment / segment_video / from_weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from inference import MTNetPredictor, NonFiniteOutput
from inference.postprocess import prob_to_mask
from model import build_mtnet, variant_of_file
from model.variants import TEST_VARIANT
from model.weights import release_state_dict
from tests.conftest import REPO, load_script
from util.errors import InputError
from util.flow import DISFlow, render_flow
from util.image import jpeg_round_trip, list_images, read_grey, read_rgb_array

SIZE = (64, 64)


@pytest.fixture(scope="module")
def predictor(tiny_weights) -> MTNetPredictor:
    model = build_mtnet(TEST_VARIANT, weights=tiny_weights, device="cpu")
    return MTNetPredictor(model, task="UVOS", test_size=SIZE, clip_length=3)


def _frames(n: int, size=(40, 56), seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for t in range(n):
        img = 120 + 80 * np.sin(0.2 * (xx[..., None] + 2 * t) + 0.1 * yy[..., None] + [0, 1, 2])
        out.append(np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8))
    return out


def test_builder_returns_eval_model_with_the_file_loaded(tiny_weights):
    model = build_mtnet(None, weights=tiny_weights, device="cpu")
    saved = torch.load(tiny_weights, map_location="cpu", weights_only=True)["network"]
    ours = release_state_dict(model)
    assert not model.training
    assert ours.keys() == saved.keys()
    assert all(torch.equal(ours[k], v) for k, v in saved.items())
    assert build_mtnet(None, weights=tiny_weights, device="cpu").encoder_name == TEST_VARIANT


def test_segment_streams_lazily(predictor):
    frames, flows = _frames(7), _frames(6, seed=1)
    pulled = []

    def counted():
        for i, frame in enumerate(frames):
            pulled.append(i)
            yield frame

    stream = predictor.segment(counted(), iter(flows))
    first = next(stream)
    assert len(pulled) <= predictor.clip_length + 1
    rest = list(stream)
    assert len(pulled) == 7 and len(rest) == 6
    assert first.dtype == np.uint8 and first.shape == (40, 56)
    assert set(np.unique(np.stack([first, *rest]))) <= {0, 255}


def test_n_and_n_minus_one_flows_give_the_same_masks(predictor):
    frames, flows = _frames(5), _frames(4, seed=1)
    short = list(predictor.segment(frames, flows))
    full = list(predictor.segment(frames, [*flows, flows[-1]]))
    assert len(short) == 5
    assert all(np.array_equal(a, b) for a, b in zip(short, full, strict=True))


def test_computed_flows_are_dis_rendered_and_jpeg_encoded(predictor):
    frames = _frames(4)
    dis = DISFlow()
    flows = [
        jpeg_round_trip(render_flow(dis(a, b))) for a, b in zip(frames, frames[1:], strict=False)
    ]
    given = list(predictor.segment(frames, flows))
    computed = list(predictor.segment(iter(frames)))
    assert all(np.array_equal(a, b) for a, b in zip(given, computed, strict=True))


def test_probabilities_come_with_the_masks(tiny_weights):
    vsod = MTNetPredictor.from_weights(tiny_weights, task="VSOD", device="cpu", test_size=SIZE)
    frames, flows = _frames(3), _frames(2, seed=1)
    for mask, prob in vsod.segment(frames, flows, with_probs=True):
        assert prob.dtype == np.float32 and prob.shape == mask.shape == (40, 56)
        assert np.array_equal(mask, prob_to_mask(torch.from_numpy(prob), "VSOD").numpy())


@pytest.mark.parametrize(
    ("n_frames", "n_flows", "expected"),
    [(4, 2, "frame 2 has no flow"), (3, 5, "more flow images than frames"), (1, 0, "frame 0")],
)
def test_flow_count_errors(predictor, n_frames, n_flows, expected):
    with pytest.raises(InputError, match=expected):
        list(predictor.segment(_frames(n_frames), _frames(n_flows, seed=1)))


def test_a_single_frame_without_flows_is_an_error(predictor):
    with pytest.raises(InputError, match="a single frame"):
        list(predictor.segment(_frames(1)))


def test_non_finite_output_names_video_and_clip(tiny_weights):
    model = build_mtnet(None, weights=tiny_weights, device="cpu")
    with torch.no_grad():
        model.cls2[-1].bias.fill_(float("nan"))
    broken = MTNetPredictor(model, test_size=SIZE, clip_length=2)
    with pytest.raises(NonFiniteOutput, match=r"video cam, clip 0 \(frames 0\.\.1\)"):
        list(broken.segment(_frames(3), _frames(2), video="cam"))


def test_compiled_predictor_serves_its_clip_length_and_segments_shorter_tails(
    tiny_weights, monkeypatch
):
    lengths = []

    def fake_compile(model, **kwargs):  # stands in for torch.compile: records, runs eagerly
        def run(imgs, flows):
            lengths.append(imgs.shape[1])
            return model(imgs, flows)

        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = build_mtnet(None, weights=tiny_weights, device="cpu")
    compiled = MTNetPredictor(model, test_size=SIZE, clip_length=3, compile=True)
    assert compiled.backend.compile_length == 3
    eager = MTNetPredictor(model, test_size=SIZE, clip_length=3)
    frames, flows = _frames(4), _frames(3)  # a first clip of 3 frames, then 1
    got = list(compiled.segment(frames, flows))
    assert lengths == [3]  # the 1-frame tail ran uncompiled
    for a, b in zip(got, list(eager.segment(frames, flows)), strict=True):
        assert np.array_equal(a, b)


def test_from_weights_reads_the_variant_off_the_keys(tiny_weights, tmp_path):
    assert variant_of_file(tiny_weights) == TEST_VARIANT
    for name, depths in (("convnext-tiny", (3, 3, 9, 3)), ("convnext-small", (3, 3, 27, 3))):
        keys = {
            f"module.backbone.stages.{i}.{j}.gamma": torch.ones(1)
            for i, depth in enumerate(depths)
            for j in range(depth)
        }
        torch.save({"it": 0, "network": keys}, tmp_path / f"{name}.pth")
        assert variant_of_file(tmp_path / f"{name}.pth") == name
    torch.save({"network": {"module.backbone.stages.0.0.gamma": torch.ones(1)}}, tmp_path / "x.pth")
    with pytest.raises(InputError, match="fit no variant"):
        variant_of_file(tmp_path / "x.pth")


def test_bad_settings_are_one_line_errors(tiny_weights):
    model = build_mtnet(None, weights=tiny_weights, device="cpu")
    with pytest.raises(InputError, match="multiples of 64"):
        MTNetPredictor(model, test_size=(100, 64))
    with pytest.raises(InputError, match="task"):
        MTNetPredictor(model, task="VOS")
    with pytest.raises(InputError, match="CUDA only"):
        MTNetPredictor(model, precision="fp16", device="cpu")


# ---- the same masks as test.py ------------------------------------------------------


def _copy_video(davis: Path, video: str, n: int, dst: Path) -> Path:
    for kind in ("frame", "flow"):
        (dst / kind / video).mkdir(parents=True)
        for p in list_images(davis / kind / video)[:n]:
            shutil.copy(p, dst / kind / video / p.name)
    return dst


def test_predictor_equals_test_py_on_a_davis_video(predictor, tiny_weights, davis_val, tmp_path):
    video = "blackswan"
    data = _copy_video(davis_val, video, 5, tmp_path / "SUB")
    # 5 frames and their 5 flows copied: drop the last flow (the usual N-1)
    list_images(data / "flow" / video)[-1].unlink()
    args = ["--test_model", str(tiny_weights), "--test_dataset", str(data), "--output_dir"]
    args += [str(tmp_path / "out"), "--device", "cpu", "--num_workers", "0"]
    args += ["--test_length", "3", "--test_size", "64", "64"]
    assert load_script("test.py").main(args) == 0
    written = list_images(tmp_path / "out" / "MTNet" / "UVOS" / "SUB" / video)
    frames = [read_rgb_array(p) for p in list_images(data / "frame" / video)]
    flows = [read_rgb_array(p) for p in list_images(data / "flow" / video)]
    masks = list(predictor.segment(frames, flows))
    assert len(written) == len(masks) == 5
    for path, mask in zip(written, masks, strict=True):
        assert np.array_equal(read_grey(path), mask), path


def test_segment_video_equals_test_py_video(predictor, tiny_weights, tmp_path):
    clip = REPO / "asset" / "sample" / "sample.mp4"
    args = ["--video", str(clip), "--test_model", str(tiny_weights), "--output_dir", str(tmp_path)]
    args += ["--device", "cpu", "--num_workers", "0", "--test_length", "3"]
    args += ["--test_size", "64", "64"]
    assert load_script("test.py").main(args) == 0
    written = list_images(tmp_path / "MTNet" / "UVOS_videos" / "sample")
    ours = list(predictor.segment_video(clip))
    assert [p.stem for p in written] == [name for name, _ in ours]
    for path, (_, mask) in zip(written, ours, strict=True):
        assert np.array_equal(read_grey(path), mask), path
