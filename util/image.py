"""The one place for image files: listing a video's frames, reading images, resizing.

Every part of the project (test.py, ``--video``, the predictor, training, ``util.flow``,
evaluation, visualisation) lists and reads images through this module, so that one rule
holds everywhere:

- Frame order: image files of a folder sorted by name with the numbers in names compared
  as numbers (``2.jpg`` before ``10.jpg``). For the zero-padded names of every benchmark
  this is plain text order, the release's order.
- Frames and flow images read as 8-bit RGB: 16-bit images scaled to 8 bits
  (``round(v / 257)``), palette images through their colours, alpha dropped, grey
  replicated.
- Predictions read as 8-bit grey (16-bit scaled, colour as PIL's luminance, as the release
  reads them); masks and ground truth likewise, except palette masks (DAVIS-2017,
  YouTube-VOS), which are read by index: non-zero = object, stored as 255.
- A file the decoder cannot read completely (a truncated JPEG or PNG; a decoder warning)
  is an ``InputError`` naming the file, never a partly grey frame.

Notation: H, W the network's input size; h, w an image's own size.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from .errors import InputError
from .fileio import atomic_path

if TYPE_CHECKING:
    from torch import Tensor

# DESIGN.md §1: frames and flow images are normalised alike, with ImageNet's statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
MASK_EXT = ".png"  # masks written by test.py and read by the evaluation
JPEG_QUALITY = 95  # frames decoded from videos and flow images

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def frame_sort_key(path: str | os.PathLike) -> list[int | str]:
    """Natural order of file names: ``2.jpg`` before ``10.jpg``; zero-padded names sort as
    text does."""
    name = os.path.basename(os.fspath(path))
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def sort_frames(paths: Iterable[Path]) -> list[Path]:
    """``paths`` in frame order (:func:`frame_sort_key`)."""
    return sorted(paths, key=frame_sort_key)


def list_images(folder: str | os.PathLike, exts: tuple[str, ...] = IMAGE_EXTS) -> list[Path]:
    """Image files of ``folder`` with one of ``exts`` (case-insensitive), in frame order.

    Hidden files (temporary files and records among them) are ignored. Raises
    ``InputError`` for a missing folder, for two images of one name (``a.jpg``,
    ``a.png``) and for an image name that is a symbolic link leading to no file (dangling
    or looping), which would otherwise drop a frame without a word.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found; expected a folder of images ({_exts(exts)})")
    named = [p for p in folder.iterdir() if p.suffix.lower() in exts and not p.name.startswith(".")]
    for p in named:
        if p.is_symlink() and not p.exists():  # dangling, or a loop of links
            raise InputError(
                f"{p}: a symbolic link that leads to no file ({os.readlink(p)}); expected an "
                "image file (one frame would be missing)"
            )
    files = sort_frames(p for p in named if p.is_file())
    stems = [p.stem for p in files]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise InputError(f"{folder}: two images named {dup}; expected one image per name")
    return files


def list_subfolders(folder: str | os.PathLike) -> list[str]:
    """Names of the visible subfolders of ``folder`` (videos of a dataset), in frame order."""
    return [
        p.name
        for p in sort_frames(Path(folder).iterdir())
        if p.is_dir() and not p.name.startswith(".")
    ]


def _exts(exts: tuple[str, ...]) -> str:
    return "/".join(exts)


def _open_complete(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image; a truncated or corrupt file (including one the decoder
    only warns about) raises ``InputError`` naming it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with Image.open(path) as img:
                img.load()
                return img
    except (OSError, ValueError, SyntaxError, Warning, Image.DecompressionBombError) as err:
        raise InputError(
            f"{path}: cannot read this image ({err}); expected a complete JPEG or PNG"
        ) from err


def _to_8bit(img: Image.Image, path: str | os.PathLike) -> Image.Image:
    """16-bit grey -> 8-bit grey by ``round(v / 257)`` (PIL would clip it to white)."""
    if img.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        raise InputError(f"{path}: a floating-point image; expected an 8- or 16-bit image")
    return img


def read_rgb(path: str | os.PathLike) -> Image.Image:
    """A frame or flow image as an 8-bit RGB PIL image (DESIGN.md §1; rules in the module
    docstring)."""
    return _to_8bit(_open_complete(path), path).convert("RGB")


def read_rgb_array(path: str | os.PathLike) -> np.ndarray:
    """A frame or flow image as RGB ``[h, w, 3]`` uint8 (a writable array)."""
    return np.array(read_rgb(path))


def _grey(img: Image.Image, path: str | os.PathLike) -> np.ndarray:
    """8-bit grey of an opened image: 16-bit scaled, colour and palette by luminance (PIL's
    ``convert("L")``), a transparent pixel as 0 (luminance times alpha / 255)."""
    img = _to_8bit(img, path)
    grey = np.array(img.convert("L"))  # writable, like every array the readers return
    if "A" not in img.getbands() and not (img.mode == "P" and "transparency" in img.info):
        return grey
    alpha = np.asarray(img.convert("RGBA").getchannel("A"), dtype=np.uint16)
    return ((grey * alpha + 127) // 255).astype(np.uint8)


def read_grey(path: str | os.PathLike) -> np.ndarray:
    """A prediction as 8-bit grey ``[h, w]`` (16-bit scaled; colour and palette images by
    luminance, as PIL's ``convert("L")``; transparent pixels as 0)."""
    return _grey(_open_complete(path), path)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask or ground truth as 8-bit grey ``[h, w]``: palette masks by index (non-zero =
    object = 255), every other kind as :func:`read_grey`."""
    img = _open_complete(path)
    if img.mode in ("P", "PA"):
        index = np.asarray(img.getchannel(0))
        return np.where(index > 0, 255, 0).astype(np.uint8)
    return _grey(img, path)


def read_object_ids(path: str | os.PathLike, palette_only: bool = False) -> np.ndarray:
    """An annotation as object ids ``[h, w]`` uint8 (0 = background): a palette PNG's
    indices, a grey PNG's values; other kinds as :func:`read_grey` unless ``palette_only``."""
    img = _open_complete(path)
    if img.mode in ("P", "L"):
        return np.array(img)
    if palette_only:
        raise InputError(
            f"{path}: a {img.mode} image; expected a palette PNG, one index per object"
        )
    return _grey(img, path)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header (nothing is decoded): the cheap
    check that a file is an image. ``InputError`` names a file that is not one."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise InputError(
            f"{path}: cannot read this image ({err}); expected a JPEG or PNG"
        ) from None


def as_pil_rgb(image: Image.Image | np.ndarray, name: object = "a frame") -> Image.Image:
    """A frame given as a PIL image or an RGB ``[h, w, 3]`` uint8 array -> PIL RGB.

    A PIL image is converted as :func:`read_rgb` converts a file (16-bit scaled, palette
    through its colours, alpha dropped, a floating-point image refused), so a frame held in
    memory gives the masks of the same pixels in a file. An empty frame is an
    ``InputError`` naming ``name``.
    """
    if isinstance(image, Image.Image):
        rgb = image if image.mode == "RGB" else _to_8bit(image, name).convert("RGB")
    else:
        array = np.asarray(image)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise InputError(
                f"{name}: shape {list(array.shape)} and type {array.dtype}; expected an RGB "
                "[h, w, 3] uint8 array"
            )
        rgb = Image.fromarray(array, "RGB")
    if rgb.width == 0 or rgb.height == 0:
        raise InputError(f"{name}: an empty image ({rgb.width}x{rgb.height}); expected pixels")
    return rgb


def resize_bilinear(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to ``size`` = (H, W), aspect ratio ignored, as torchvision's ``Resize`` does
    on a PIL image: PIL bilinear, which filters (antialiases) when shrinking (DESIGN.md §8).
    """
    height, width = size
    return img.resize((width, height), Image.BILINEAR)


def normalize(x: Tensor) -> Tensor:
    """``[..., 3, H, W]`` in [0, 1] -> ImageNet-normalised (DESIGN.md §1)."""
    from torchvision.transforms import functional as TF

    return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def denormalize(images: Tensor) -> Tensor:
    """Undo :func:`normalize`: ``[..., 3, H, W]`` -> the same in [0, 1]."""
    mean = images.new_tensor(IMAGENET_MEAN)[:, None, None]
    std = images.new_tensor(IMAGENET_STD)[:, None, None]
    return (images * std + mean).clamp(0.0, 1.0)


def to_network_input(img: Image.Image | np.ndarray, size: tuple[int, int]) -> Tensor:
    """PIL RGB image or RGB array -> normalised ``[3, H, W]`` float tensor (resize, ToTensor,
    ImageNet statistics; DESIGN.md §1, §8)."""
    from torchvision.transforms import functional as TF

    return normalize(TF.to_tensor(resize_bilinear(as_pil_rgb(img), size)))


def write_image(
    path: str | os.PathLike, image: np.ndarray, jpeg_quality: int = JPEG_QUALITY
) -> Path:
    """Write an 8-bit ``[h, w]`` grey or ``[h, w, 3]`` RGB image atomically; the suffix
    (.png, .jpg) picks the format. Returns the path."""
    path = Path(path)
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)  # OpenCV: BGR
    is_jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if is_jpeg else []
    try:
        with atomic_path(path) as tmp:
            if not cv2.imwrite(os.fspath(tmp), image, params):
                raise InputError(f"{path}: could not write this image; expected a writable folder")
    except OSError as err:
        raise InputError(
            f"{path}: could not write ({err.strerror}); expected a writable folder"
        ) from err
    return path


def jpeg_round_trip(image: np.ndarray, jpeg_quality: int = JPEG_QUALITY) -> np.ndarray:
    """An RGB ``[h, w, 3]`` uint8 image as it reads back after :func:`write_image` as a JPEG
    (so images kept in memory equal the ones written to work files)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise InputError("could not encode an image as JPEG")
    with Image.open(io.BytesIO(data.tobytes())) as img:  # decoded as read_rgb decodes files
        return np.asarray(img.convert("RGB"))
