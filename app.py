"""A web page for MTNet: upload a video, watch its masks, download them (Gradio).

    python app.py                      # http://127.0.0.1:7860, on the CPU
    python app.py --test_model saves/mtnet.pth --port 8080 --device cuda

The network is built once at start: ``--test_model``, else ``saves/mtnet.pth`` when present,
else test.py's untrained network (the page then says its masks are meaningless). Requests
run one at a time (``--concurrency``) through ``inference.demo``; Python clients call the
``/segment`` endpoint::

    from gradio_client import Client, handle_file
    overlay, masks_zip, summary = Client("http://127.0.0.1:7860/").predict(
        video=handle_file("clip.mp4"), task="UVOS", size=256, api_name="/segment")
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from dataset.registry import TASKS
from inference.demo import (
    DemoCancelled,
    DemoLimits,
    DemoSegmenter,
    DemoSettings,
    Update,
    check_limits,
    kept_frames,
    probe_video,
    size_choices,
)
from util.cli import ArgumentParser
from util.errors import InputError, exit_status
from util.memory import retain_freed_memory

SAMPLE = Path(__file__).resolve().parent / "asset" / "sample" / "sample.mp4"
WEIGHTS_HELP = (
    "saves/README.md explains where the weights come from (the authors' release, "
    "https://github.com/hy0523/MTNet); start the server with --test_model FILE"
)


def build_parser() -> argparse.ArgumentParser:
    d = DemoLimits()
    p = ArgumentParser(
        description="MTNet web demo: upload a video, get its masks and an overlay video.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: all)")
    p.add_argument("--port", type=int, default=7860, help="port to serve on")
    p.add_argument(
        "--test_model",
        default=None,
        help="weights file (default: saves/mtnet.pth when present, else an untrained network)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (or auto)")
    p.add_argument("--max_upload_mb", type=float, default=d.max_upload_mb, help="upload size")
    p.add_argument("--max_seconds", type=float, default=d.max_seconds, help="video duration")
    p.add_argument("--max_side", type=int, default=d.max_side, help="frame side in pixels")
    p.add_argument("--concurrency", type=int, default=1, help="requests run at once")
    p.add_argument("--share", action="store_true", help="also a public gradio.live link")
    return p


class Stops:
    """Stop flags of the running requests, by browser session."""

    def __init__(self) -> None:
        self._flags: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()

    def add(self, session: str) -> threading.Event:
        flag = threading.Event()
        with self._lock:
            self._flags.setdefault(session, set()).add(flag)
        return flag

    def remove(self, session: str, flag: threading.Event) -> None:
        with self._lock:
            self._flags.get(session, set()).discard(flag)

    def stop(self, session: str) -> None:
        with self._lock:
            for flag in self._flags.get(session, ()):
                flag.set()


def settings_of(
    task: str,
    size: int | str,
    precision: str,
    first_frame: float | None,
    last_frame: float | None,
    max_fps: float | None,
) -> DemoSettings:
    """The page's values -> ``DemoSettings`` (last frame -1: to the end; cap 0: none)."""
    return DemoSettings(
        task=task,
        size=int(size),
        precision=precision,
        first_frame=int(first_frame or 0),
        last_frame=None if last_frame is None or last_frame < 0 else int(last_frame),
        max_fps=float(max_fps) if max_fps else None,
    )


def header(segmenter: DemoSegmenter) -> str:
    text = (
        "# MTNet: video object segmentation\n"
        "Upload a video (or take the sample below), choose the task and press **Segment**: "
        "the masks come back over the video and as PNG files in a zip. "
        "On a CPU, optical flow (at the video's own size) and the network take most of the "
        "time: the line under the upload estimates it from the last request's pace. "
        f"Limits: {segmenter.limits.max_seconds:g} s of video, "
        f"{segmenter.limits.max_upload_mb:g} MB, frames of {segmenter.limits.min_side}-"
        f"{segmenter.limits.max_side} pixels a side."
    )
    if segmenter.untrained:
        text += (
            "\n\n> **No weights: this server runs an UNTRAINED network (random weights), so "
            f"its masks are meaningless.** {WEIGHTS_HELP}."
        )
    return text


def build_app(segmenter: DemoSegmenter, concurrency: int = 1):
    """The page and its ``/segment`` endpoint around ``segmenter`` (a ``gr.Blocks``, queued
    with ``concurrency`` requests at a time)."""
    stops = Stops()

    def describe(video: str | None, *values) -> str:
        """A line on the uploaded video and the frames the settings keep."""
        if not video:
            return ""
        name = Path(video).name
        try:
            info = probe_video(video, name)
            check_limits(info, segmenter.limits, name)
            settings = settings_of(*values)
            settings.validate()
        except InputError as err:
            return f"⚠ {err}"
        if not info.frames:
            return f"{info.width}×{info.height}, {info.fps:.3g} frames/s"
        count = len(kept_frames(settings, info, info.frames))
        pace = segmenter.last_pace
        expected = f"; {pace.estimate(count)}" if pace else ""
        return (
            f"{info.width}×{info.height}, {info.fps:.3g} frames/s, {info.seconds:.1f} s: "
            f"{count} frames to segment at these settings{expected}"
        )

    def segment(
        video: str | None,
        task: str,
        size: int,
        precision: str,
        first_frame: float | None,
        last_frame: float | None,
        max_fps: float | None,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 (Gradio's way of asking for a progress bar)
    ) -> Iterator[tuple[str, str, str]]:
        if not video:
            raise gr.Error("no video: upload one, or choose the sample", print_exception=False)
        session = request.session_hash or ""
        flag = stops.add(session)

        def report(update: Update) -> None:
            if flag.is_set():
                raise DemoCancelled
            progress((update.done, update.total), desc=update.text, unit="frames")

        try:
            settings = settings_of(task, size, precision, first_frame, last_frame, max_fps)
            with tempfile.TemporaryDirectory(prefix="mtnet-app-") as work:
                result = segmenter.run(video, settings, work, name=Path(video).name, report=report)
                # Gradio copies the files into its cache before the generator resumes
                yield str(result.overlay), str(result.masks_zip), result.summary
        except InputError as err:
            raise gr.Error(str(err), print_exception=False) from None
        except DemoCancelled:
            raise gr.Error("stopped", print_exception=False) from None
        finally:
            stops.remove(session, flag)

    def stop(request: gr.Request) -> None:
        stops.stop(request.session_hash or "")

    with gr.Blocks(title="MTNet", analytics_enabled=False) as demo:
        gr.Markdown(header(segmenter))
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"], elem_id="video")
                gr.Examples(
                    [[str(SAMPLE)]],
                    inputs=[video],
                    label="Sample",
                    example_labels=["sample.mp4: 32 frames, 320×240, 12 frames/s"],
                )
                about = gr.Markdown()
                task = gr.Radio(list(TASKS), value="UVOS", label="Task (UVOS masks, VSOD maps)")
                size = gr.Dropdown(
                    size_choices(),
                    value=DemoSettings.size,
                    label="Network input size",
                    elem_id="size",
                )
                precision = gr.Radio(segmenter.precisions, value="fp32", label="Precision")
                with gr.Accordion("Long videos", open=False):
                    first_frame = gr.Number(0, precision=0, minimum=0, label="First frame")
                    last_frame = gr.Number(
                        -1, precision=0, minimum=-1, label="Last frame (-1: to the end)"
                    )
                    max_fps = gr.Number(
                        DemoSettings.max_fps, minimum=0, label="Frame-rate cap (0: every frame)"
                    )
                with gr.Row():
                    run = gr.Button("Segment", variant="primary", elem_id="segment")
                    cancel = gr.Button("Stop")
            with gr.Column():
                overlay = gr.Video(
                    label="Masks over the video", autoplay=True, loop=True, elem_id="overlay"
                )
                masks = gr.File(label="Masks (PNG, named by frame)")
                summary = gr.Textbox(label="Run", interactive=False, elem_id="summary")
        inputs = [video, task, size, precision, first_frame, last_frame, max_fps]
        for component in inputs:
            component.change(describe, inputs, about, api_visibility="private", queue=False)
        event = run.click(segment, inputs, [overlay, masks, summary], api_name="segment")
        cancel.click(stop, None, None, cancels=[event], queue=False, api_visibility="private")
    demo.queue(default_concurrency_limit=concurrency)
    return demo


def launch(demo, host: str, port: int, limits: DemoLimits, share: bool = False, block=True):
    """Serve ``demo``: local unless ``share``, uploads capped, the sample servable."""
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=f"{limits.max_upload_mb * 1024 * 1024:.0f}b",
        allowed_paths=[str(SAMPLE)],
        footer_links=[],
        prevent_thread_lock=not block,
        quiet=not block,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    retain_freed_memory()

    def serve() -> None:
        limits = DemoLimits(args.max_upload_mb, args.max_seconds, args.max_side)
        limits.validate()
        if args.concurrency < 1:
            raise InputError(f"--concurrency {args.concurrency}: expected 1 or more")
        segmenter = DemoSegmenter.load(args.test_model, args.device, limits)
        launch(build_app(segmenter, args.concurrency), args.host, args.port, limits, args.share)

    return exit_status("app.py", serve)


if __name__ == "__main__":
    sys.exit(main())
