"""Time from upload to playable result in the web demo, in a real headless browser.

    python -m benchmarks.app_speed [--test_model FILE] [--runs 2] [--videos sample clip]

Starts app.py's page on a free local port, its network on the CPU (the page's default
``--device cpu``, also on a machine with a GPU; the network of ``--test_model``, else
test.py's default weights file, else the untrained network: the first line printed says
which, and the CPU), drives Debian's chromium through Selenium with the page's default
settings, and prints, per video and run, the seconds from handing the file to the upload
field until the result video is playable (``readyState >= 1``, ``duration > 0``), and the
CPU seconds this process spent meanwhile: the page's server (network, flow, encoding) and
the Selenium client that drives the browser, which is little beside the server; chromium's
own processes are not counted. On a machine shared with other work the CPU seconds say
more than the wall time. The first run of the first video also makes the predictor for
the page's settings. Videos: the bundled sample, and a synthetic 10-second 640x360 30 fps
clip (a textured disc moving over a panning textured background).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "asset" / "sample" / "sample.mp4"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
LOCAL_HOSTS = ("127.0.0.1", "localhost")
PLAYABLE = (
    "const v = document.querySelector('#overlay video');"
    "return v !== null && v.readyState >= 1 && v.duration > 0;"
)


def chrome():
    """Headless Debian chromium through Selenium (no browser download), logging every
    network request (``requested_urls``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--autoplay-policy=no-user-gesture-required"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def requested_urls(driver) -> list[str]:
    """Every URL the page requested since the last call (Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def leaves_machine(url: str) -> bool:
    """A request to anything but this machine (data: and blob: URLs stay in the page)."""
    parsed = urlparse(url)
    return parsed.scheme not in ("data", "blob") and parsed.hostname not in LOCAL_HOSTS


def upload_and_segment(driver, url: str, video: Path, size: int | None = None, timeout=900):
    """Load the page, upload ``video``, optionally choose the network size, press Segment
    and wait for a playable result; the seconds from upload to playable."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 120)
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#video input[type=file]"))
    start = time.perf_counter()
    upload.send_keys(str(video))
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#video video"))
    if size is not None:
        field = driver.find_element(By.CSS_SELECTOR, "#size input")
        field.clear()
        field.send_keys(f"{size}\n")
    driver.find_element(By.ID, "segment").click()
    WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: d.execute_script(PLAYABLE))
    return time.perf_counter() - start


def synthetic_clip(path: Path, seconds: float = 10, fps: float = 30, size=(360, 640)) -> Path:
    """A textured disc moving over a panning textured background (mp4v)."""
    from util.video import write_video

    rng = np.random.default_rng(0)
    h, w = size
    background = cv2.resize(rng.integers(0, 256, (h // 6, w // 3, 3), np.uint8), (2 * w, h))
    texture = cv2.resize(rng.integers(0, 256, (8, 8, 3), np.uint8), (h // 3, h // 3))
    yy, xx = np.mgrid[0 : h // 3, 0 : h // 3]
    disc = (yy - h // 6) ** 2 + (xx - h // 6) ** 2 < (h // 6) ** 2

    def frames():
        for t in range(round(seconds * fps)):
            frame = np.ascontiguousarray(background[:, t : t + w])
            x = int(w / 2 + w / 3 * np.sin(t / fps)) - h // 6
            y = int(h / 2 + h / 5 * np.cos(t / fps)) - h // 6
            frame[y : y + h // 3, x : x + h // 3][disc] = texture[disc]
            yield frame

    return write_video(frames(), path, fps)


def main(argv: list[str] | None = None) -> int:
    import app
    from inference.demo import DemoLimits, DemoSegmenter, DemoSettings
    from util.cpu import cpu_description

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--test_model",
        default=None,
        help="weights file (default: test.py's default file if present, else untrained)",
    )
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--videos", nargs="+", default=["sample", "clip"], choices=["sample", "clip"])
    args = p.parse_args(argv)
    segmenter = DemoSegmenter.load(args.test_model, "cpu", DemoLimits())
    page = DemoSettings()
    print(
        f"network {segmenter.weights} on {segmenter.device} (CPU: {cpu_description()}); "
        f"page defaults {page.size}x{page.size}, {page.precision}, at most {page.max_fps:g} "
        "frames per second of video",
        flush=True,
    )
    demo = app.build_app(segmenter)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.launch(demo, "127.0.0.1", port, segmenter.limits, block=False)
    url = f"http://127.0.0.1:{port}/"
    driver = chrome()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            videos = {"sample": SAMPLE}
            if "clip" in args.videos:
                videos["clip"] = synthetic_clip(Path(tmp) / "clip640x360.mp4")
            for name in args.videos:
                for run in range(1, args.runs + 1):
                    cpu = time.process_time()
                    seconds = upload_and_segment(driver, url, videos[name])
                    cpu = time.process_time() - cpu
                    print(
                        f"{name} run {run}: {seconds:.1f} s from upload to playable, "
                        f"{cpu:.1f} CPU s in this process (server and Selenium client)",
                        flush=True,
                    )
        outside = [u for u in requested_urls(driver) if leaves_machine(u)]
        print(f"requests that left the machine: {outside}")
    finally:
        driver.quit()
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
