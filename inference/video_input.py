"""test.py --video and ``MTNetPredictor.segment_video``: a video file or a folder of frames
in, a paired video of frame and flow files out (the one pipeline both use).

For a video ``clip.mp4`` (or a folder ``clip/`` of frames without flows), in the folders
that ``util.layout.OutputLayout`` defines (``name``: ``util.layout.safe_name`` of the stem):

- ``{output_dir}/{model_name}/work/{name}/``: the work folder, kept so that a rerun resumes:
  ``frame/00000.png ...`` (decoded from a video file, lossless, so the frames read back are
  the decoded pixels; a folder's frames are read in place), ``flow/00000.jpg ...``
  (``util.flow``: flow t->t+1 named after frame t) and ``source.json``, what they were made
  from and how (the frame format and the flow settings). A video that changed (size or
  modification time), another source of the same name, frames of another format (a work
  folder of an older version) or other flow settings clear what no longer fits; existing
  flows are otherwise kept.

test.py then writes (``inference.runner``):

- ``{output_dir}/{model_name}/{task}_videos/{name}/00000.png ...``: one mask per frame at the
  video's own size (the last frame, which has no flow of its own, reuses the preceding
  flow), and ``test_config.json``, the record of the run that wrote them;
- ``{output_dir}/{model_name}/{task}_overlay/{name}.mp4`` (and ``{name}.gif``,
  ``{name}/*.jpg``): the masks over the frames beside the flow, drawn by
  ``inference.visualize``.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from dataset.test_videos import PairedVideo, VideoSpec, pair_video
from util.errors import InputError, setting
from util.fileio import read_json, write_json
from util.flow import FlowSettings, compute_flows, list_frames
from util.image import IMAGE_EXTS, list_images
from util.layout import DrawnVideo, mask_path, output_name, work_dir
from util.video import extract_frames, video_fps

from .visualize import VisConfig, VisVideo, visualise_video

log = logging.getLogger(__name__)

MANIFEST = "source.json"
FRAME_SUFFIX = ".png"  # decoded frames, lossless: the API on decoded frames equals test.py
FOLDER_FPS = VisConfig().fps  # overlay frame rate for a folder of frames (no rate stored)


@dataclass(frozen=True)
class VideoInput:
    """The ``--video`` source and the folders of its run.

    path: the video file or frame folder; name: its stem made a safe folder name
    (``util.layout.safe_name``), naming the output folders; work: ``{work_root}/{name}``.
    """

    path: Path
    name: str
    is_file: bool
    work: Path

    @classmethod
    def resolve(cls, video: str | os.PathLike, work_root: str | os.PathLike) -> VideoInput:
        """A video file or frame folder and the root of work folders -> ``VideoInput``;
        ``InputError`` when the path does not exist."""
        path = Path(video)
        if not path.exists():
            named = setting("path", str(path), flag="--video")
            raise InputError(f"{named}: no such video file or folder of frames")
        name = output_name(path.stem if path.is_file() else path.resolve().name, "video")
        return cls(path, name, path.is_file(), work_dir(work_root, name))

    @property
    def frame_format(self) -> str:
        """How the frames the network reads are stored: decoded to PNG in the work folder,
        or read in place from the user's folder."""
        return FRAME_SUFFIX.lstrip(".") if self.is_file else "in place"

    @property
    def frame_dir(self) -> Path:
        return self.work / "frame" if self.is_file else self.path

    @property
    def flow_dir(self) -> Path:
        return self.work / "flow"

    def prepare(self, flow: FlowSettings, device: torch.device | str = "cpu") -> PairedVideo:
        """Frames (decoded if needed) and flows in place, paired frame by frame (no drop tail).

        Raises ``VideoError`` (an unreadable video), ``FlowError`` (no frames, frames of
        different sizes, RAFT weights) or ``InputError``.
        """
        manifest = read_json(self.work / MANIFEST)
        made = {"source": self.fingerprint(), "frame_format": self.frame_format}
        fits = all(manifest.get(k) == v for k, v in made.items())
        if not (fits and self._frames_complete(manifest)):
            if manifest:
                log.info(
                    "%s: the source or the frame format changed; frames and flows are made again",
                    self.work,
                )
            self._clear(self.work / MANIFEST, self.flow_dir, self.work / "frame")
            count = None
            if self.is_file:
                count = len(extract_frames(self.path, self.frame_dir, suffix=FRAME_SUFFIX))
            manifest = {**made, "frames": count}
        flow_record = flow.record()
        if manifest.get("flow") != flow_record:
            if manifest.get("flow") is not None:
                log.info("%s: other flow settings; flows are computed again", self.work)
            self._clear(self.flow_dir)
        write_json(self.work / MANIFEST, {**manifest, "flow": flow_record})

        frames = list_frames(self.frame_dir)  # FlowError for an empty folder
        if len(frames) < 2:
            raise InputError(f"{self.path}: a single frame; expected two or more (motion)")
        compute_flows(self.frame_dir, self.flow_dir, flow, device=device)
        spec = VideoSpec(self.name, self.frame_dir, self.flow_dir, IMAGE_EXTS, IMAGE_EXTS)
        return pair_video(spec, drop_tail=False)

    def fingerprint(self) -> dict:
        """What the frames and flows are made from: the file's size and modification time,
        or each frame's name, size and modification time."""
        resolved = str(self.path.resolve())
        if self.is_file:
            stat = self.path.stat()
            return {"video": resolved, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        frames = list_images(self.path)
        return {
            "folder": resolved,
            "frames": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in frames],
        }

    def _frames_complete(self, manifest: dict) -> bool:
        """The decoded frames are all there (a folder's frames are not ours to check)."""
        if not self.is_file:
            return True
        folder = self.work / "frame"
        found = folder.is_dir() and sum(1 for _ in folder.glob(f"[0-9]*{FRAME_SUFFIX}"))
        return found == manifest.get("frames")

    def _clear(self, *paths: Path) -> None:
        """Remove work files; only ever below ``self.work`` (never a user's frame folder)."""
        for path in paths:
            assert path.is_relative_to(self.work) and path != self.path
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def write_overlay(
        self, video: PairedVideo, masks_dir: Path, overlay_dir: Path, task: str, label: str
    ) -> Path:
        """The masks in ``masks_dir`` over the frames, beside the flow, as images, an MP4 and
        a GIF in ``overlay_dir``, the panel labelled ``label``; returns the MP4's path."""
        vis = VisVideo(
            name=self.name,
            stems=video.stems,
            frames=dict(zip(video.stems, video.frames, strict=True)),
            flows=dict(zip(video.stems, video.flows, strict=True)),
            preds={stem: mask_path(masks_dir, stem) for stem in video.stems},
            masks=None,
        )
        fps = video_fps(self.path) if self.is_file else FOLDER_FPS
        vis_cfg = VisConfig(
            task_name=task, model_name=label, with_flow=True, make_video=True, fps=fps
        )
        visualise_video(vis, overlay_dir, vis_cfg)
        return DrawnVideo(overlay_dir, self.name).mp4
