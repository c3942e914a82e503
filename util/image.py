"""Image I/O: reading frames and flows, the test-time resize and normalisation, PNG writing.

Notation: H, W the network's input size; h, w an image's own size.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
from PIL import Image
from torch import Tensor
from torchvision.transforms import functional as TF

from .errors import InputError
from .fileio import atomic_path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def read_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image with PIL and convert it to RGB (frames and flows alike, MTNET.md §1)."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(f"{path}: cannot read this image ({err}); expected a JPEG or PNG") from err


def resize_bilinear(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to ``size`` = (H, W), aspect ratio ignored, as torchvision's ``Resize`` does
    on a PIL image: PIL bilinear, which filters (antialiases) when shrinking (MTNET.md §8).
    """
    height, width = size
    return img.resize((width, height), Image.BILINEAR)


def to_network_input(img: Image.Image, size: tuple[int, int]) -> Tensor:
    """PIL RGB image -> normalised ``[3, H, W]`` float tensor (resize, ToTensor, ImageNet §1)."""
    x = TF.to_tensor(resize_bilinear(img, size))
    return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an 8-bit ``[h, w]`` grey or ``[h, w, 3]`` RGB image atomically; the suffix
    (.png, .jpg) picks the format."""
    if image.ndim == 3:
        image = np.ascontiguousarray(image[..., ::-1])  # OpenCV writes BGR
    try:
        with atomic_path(path) as tmp:
            if not cv2.imwrite(os.fspath(tmp), image):
                raise InputError(f"{path}: could not write this image; expected a writable folder")
    except OSError as err:
        raise InputError(
            f"{path}: could not write ({err.strerror}); expected a writable folder"
        ) from err


def read_grey(path: str | os.PathLike) -> np.ndarray:
    """Read an image as 8-bit grey ``[h, w]`` (predictions, ground-truth masks)."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read this image ({err}); expected a PNG mask") from err
