"""The web demo (app.py, inference/demo.py): the request pipeline's rules, the /segment
endpoint through gradio_client against a running server, and the page in a real headless
browser (``browser`` marker; skipped without Debian's chromium and chromium-driver)."""

from __future__ import annotations

import io
import shutil
import socket
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.app_speed import (
    CHROMEDRIVER,
    CHROMIUM,
    chrome,
    leaves_machine,
    requested_urls,
    upload_and_segment,
)
from inference import config
from inference.demo import (
    DemoCancelled,
    DemoLimits,
    DemoSegmenter,
    DemoSettings,
    Pace,
    Update,
    VideoInfo,
    check_limits,
    kept_frames,
    overlay_size,
    precisions_here,
)
from model import build_mtnet
from tests.conftest import load_script
from util.errors import InputError
from util.video import write_video

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "asset" / "sample" / "sample.mp4"
SIZE = 64  # the network's input in these tests


# --- the pipeline's rules -------------------------------------------------------------------


def test_kept_frames_range_and_cap():
    info = VideoInfo(width=64, height=48, fps=30.0, frames=40)
    every = DemoSettings(max_fps=None)
    assert kept_frames(every, info, 40) == list(range(40))
    # a 10 fps cap on 30 fps: every third frame, from the range's first
    capped = DemoSettings(first_frame=5, last_frame=20, max_fps=10)
    assert kept_frames(capped, info, 40) == [5, 8, 11, 14, 17, 20]
    # 12 fps capped to 10: steps of 1.2 frames, rounded to the nearest frame
    slow = VideoInfo(width=64, height=48, fps=12.0, frames=8)
    assert kept_frames(DemoSettings(max_fps=10), slow, 8) == [0, 1, 2, 4, 5, 6, 7]
    # a cap above the video's rate keeps every frame; the range's end is clipped
    assert kept_frames(DemoSettings(last_frame=99, max_fps=60), info, 40) == list(range(40))


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (VideoInfo(20, 100, 25.0, 50), "frames of 20x100; expected at least 32 pixels"),
        (VideoInfo(2000, 100, 25.0, 50), "frames of 2000x100; this server takes at most 1920"),
        (VideoInfo(64, 64, 25.0, 1525), "61.0 s of video; this server takes at most 60 s"),
    ],
)
def test_limits_are_one_line_naming_the_upload(info, expected):
    with pytest.raises(InputError) as err:
        check_limits(info, DemoLimits(), "holiday.mp4")
    message = str(err.value)
    assert message.startswith("holiday.mp4: ") and expected in message
    assert "\n" not in message


def test_settings_and_limits_refused():
    for settings, expected in [
        (DemoSettings(size=100), "multiples of 64"),
        (DemoSettings(task="SOD"), "task 'SOD'"),
        (DemoSettings(first_frame=9, last_frame=3), "the last frame comes before the first"),
        (DemoSettings(max_fps=-1), "frame-rate cap -1"),
    ]:
        with pytest.raises(InputError, match=expected):
            settings.validate()
    with pytest.raises(InputError, match="--max_seconds 0"):
        DemoLimits(max_seconds=0).validate()


def test_overlay_size_even_and_capped():
    assert overlay_size(640, 360) == (640, 360)
    assert overlay_size(1920, 1080) == (640, 360)
    assert overlay_size(322, 242) == (322, 242)
    assert overlay_size(323, 241) == (324, 240)  # nearest even sides


def test_pace_estimate():
    pace = Pace(seconds_per_frame=0.5, width=640, height=360, size=256)
    assert pace.estimate(100) == (
        "about 50 s at the last request's pace (0.50 s a frame for 640x360 at size 256)"
    )


def test_precisions_here_use_test_py_check():
    cpu = precisions_here(torch.device("cpu"))
    assert cpu[0] == "fp32" and "int8" in cpu
    assert "fp16" not in cpu and "tf32" not in cpu and "int8_static" not in cpu


# --- a running server -----------------------------------------------------------------------


def clip_frames(count: int, size: tuple[int, int] = (72, 96)) -> list[np.ndarray]:
    """A textured square moving over a textured background."""
    rng = np.random.default_rng(3)
    h, w = size
    background = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), np.uint8), (w, h))
    square = cv2.resize(rng.integers(0, 256, (4, 4, 3), np.uint8), (h // 3, h // 3))
    frames = []
    for t in range(count):
        frame = background.copy()
        frame[h // 3 : 2 * h // 3, 8 + 4 * t : 8 + 4 * t + h // 3] = square
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def files():
    """A random-weights network's file, a 6-frame 5 fps clip, and a text file named .mp4."""
    folder = Path(tempfile.mkdtemp(prefix="mtnet-test-app-"))
    weights = folder / "random.pth"
    torch.save(build_mtnet("convnext-tiny", device="cpu", seed=1).state_dict(), weights)
    clip = write_video(clip_frames(6), folder / "clip.mp4", fps=5)  # under the default cap
    text = folder / "notes.mp4"
    text.write_text("these are notes, not a video\n")
    yield {"weights": weights, "clip": clip, "text": text, "dir": folder}
    shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def segmenter(files):
    return DemoSegmenter.load(files["weights"], "cpu", DemoLimits(max_seconds=10))


def test_a_stop_ends_the_request_at_the_next_frame(segmenter, files, tmp_path):
    seen = []

    def report(update: Update) -> None:
        seen.append(update.stage)
        if update.stage == "network":
            raise DemoCancelled

    with pytest.raises(DemoCancelled):
        segmenter.run(files["clip"], DemoSettings(size=SIZE), tmp_path, report=report)
    assert seen[0] == "decoding" and "flow" in seen and seen[-1] == "network"
    assert seen.count("network") == 1
    assert not (tmp_path / "overlay.webm").exists()


@pytest.fixture(scope="module")
def server(segmenter):
    """app.py's page on a free local port, serving the random-weights network."""
    app = load_script("app.py")
    demo = app.build_app(segmenter, concurrency=1)
    port = free_port()
    app.launch(demo, "127.0.0.1", port, segmenter.limits, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def zip_masks(path: str) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        return {n: np.asarray(Image.open(io.BytesIO(archive.read(n)))) for n in archive.namelist()}


def folder_masks(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def video_codec_and_frames(path: str) -> tuple[str, int]:
    capture = cv2.VideoCapture(path)
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode(errors="replace")
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return fourcc, count


WORK_REMOVAL_DEADLINE = 10.0  # seconds for the server to remove a request's work folder


def wait_until_gone(folder: Path, deadline: float = WORK_REMOVAL_DEADLINE) -> None:
    """Return once ``folder`` no longer exists; fail naming it after ``deadline`` seconds
    (the server removes it after the response, in its own thread)."""
    stop = time.monotonic() + deadline
    while folder.exists():
        if time.monotonic() > stop:
            left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
            pytest.fail(
                f"the request's work folder {folder} still exists {deadline:g} s after "
                f"the response (holding {left})"
            )
        time.sleep(0.05)


def test_endpoint_masks_equal_test_py(server, segmenter, files, tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    work_folders = []  # the folders this test's request worked in (the server's own thread)
    run = segmenter.run

    def recording_run(video, settings, work, **options):
        work_folders.append(Path(work))
        return run(video, settings, work, **options)

    monkeypatch.setattr(segmenter, "run", recording_run)
    client = Client(server, verbose=False)
    overlay, masks_zip, summary = client.predict(
        video=handle_file(files["clip"]), task="UVOS", size=SIZE, api_name="/segment"
    )
    # test.py --video on the same clip, weights, task and size
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    args = ["--video", str(files["clip"]), "--test_model", str(files["weights"])]
    args += ["--test_size", str(SIZE), str(SIZE), "--device", "cpu", "--output_dir", str(out)]
    assert load_script("test.py").main(args) == 0
    expected = folder_masks(out / "MTNet" / "UVOS_videos" / "clip")
    got = zip_masks(masks_zip)
    assert list(got) == [f"{i:05d}.png" for i in range(6)] == list(expected)
    for name, mask in expected.items():
        np.testing.assert_array_equal(got[name], mask, err_msg=name)
    # the overlay is the WebM written here, VP9, passed through without conversion
    assert Path(overlay).suffix == ".webm"
    assert video_codec_and_frames(overlay) == ("VP90", 6)
    assert summary.startswith("6 frames (0-5) in ") and "UVOS, 64x64, fp32" in summary
    assert "random.pth (sha256 " in summary
    assert segmenter.last_pace.width == 96 and segmenter.last_pace.size == SIZE
    # the request worked in one temporary folder of its own, outside the project, and it
    # is removed
    assert len(work_folders) == 1, work_folders
    work = work_folders[0]
    assert work.parent == Path(tempfile.gettempdir()) and work.name.startswith("mtnet-app-")
    wait_until_gone(work)


def test_not_a_video_is_one_line_then_the_next_request_succeeds(server, files):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    with pytest.raises(AppError) as err:
        client.predict(
            video=handle_file(files["text"]), task="UVOS", size=SIZE, api_name="/segment"
        )
    assert str(err.value) == "notes.mp4: not a video that can be decoded; expected a video file"
    _, masks_zip, _ = client.predict(
        video=handle_file(files["clip"]), task="VSOD", size=SIZE, api_name="/segment"
    )
    assert len(zip_masks(masks_zip)) == 6


def test_two_requests_at_once_both_finish(server, files):
    from gradio_client import Client, handle_file

    def segment(task: str) -> dict[str, np.ndarray]:
        client = Client(server, verbose=False)
        result = client.predict(
            video=handle_file(files["clip"]), task=task, size=SIZE, api_name="/segment"
        )
        return zip_masks(result[1])

    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(segment, "UVOS"), pool.submit(segment, "UVOS")]
        first, second = (job.result(timeout=300) for job in jobs)
    assert list(first) == list(second) == [f"{i:05d}.png" for i in range(6)]
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


# --- a real browser -------------------------------------------------------------------------


@pytest.mark.browser
def test_browser_upload_segment_play(server, tmp_path):
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(
            f"{CHROMIUM} or {CHROMEDRIVER} absent (apt-get install chromium chromium-driver)"
        )
    from selenium.webdriver.common.by import By

    driver = chrome()
    try:
        upload_and_segment(driver, server, SAMPLE, size=SIZE, timeout=600)
        summary = driver.find_element(By.CSS_SELECTOR, "#summary textarea").get_attribute("value")
        assert summary.startswith("16 frames (0-30, every 2 frames) in ")  # 12 fps capped to 6
        assert f"{SIZE}x{SIZE}" in summary and "random.pth" in summary
        shot = tmp_path / "app.png"
        driver.save_screenshot(str(shot))
        assert Image.open(shot).size[0] >= 1000
        urls = requested_urls(driver)
        assert any(url.startswith(server) for url in urls)  # the log did record the page
        assert [url for url in urls if leaves_machine(url)] == []
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def no_default_weights(tmp_path, monkeypatch):
    """A saves/mtnet.pth on this machine must not change what the tests see."""
    monkeypatch.setattr(config, "DEFAULT_MODEL", str(tmp_path / "saves" / "mtnet.pth"))


def test_a_missing_weights_file_says_where_weights_come_from(tmp_path) -> None:
    with pytest.raises(InputError) as err:
        DemoSegmenter.load(tmp_path / "absent.pth")
    assert str(err.value).startswith(f"{tmp_path / 'absent.pth'}: no such weights file")
    assert "saves/README.md" in str(err.value) and "\n" not in str(err.value)
