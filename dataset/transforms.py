"""Training augmentation of DESIGN.md §7 and the image loading shared with validation.

Every random choice is drawn by :func:`sample_aug_params` from a ``numpy.random.Generator``
that the caller passes in; the functions that apply the parameters are pure. Order
(DESIGN.md §7): flip -> crop -> rotate -> photometric (frames only) -> resize -> tensor.
The geometric steps are identical for every frame, flow image and mask of a clip, and flow
images are moved like pixels: their colours (the encoded direction) are never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch import Tensor
from torchvision.transforms import functional as TF

from util.image import normalize, read_mask, read_rgb

CROP_BORDER = 30  # each side of the crop box is 1..30 px shorter than the frame
ROTATE_PROB = 0.2
ROTATE_RANGE = (-15, 14)  # inclusive integer degrees, counter-clockwise
# (name, lowest k, highest k): factor k / 10, applied in this order (DESIGN.md §7).
ENHANCERS = (
    ("Brightness", 5, 15),
    ("Contrast", 5, 15),
    ("Color", 0, 20),
    ("Sharpness", 0, 30),
)


@dataclass(frozen=True)
class AugParams:
    """One clip's augmentation.

    Attributes:
        flip: mirror left-right.
        crop_box: ``(left, upper, right, lower)`` in pixels of the (flipped) first frame.
        angle: rotation in degrees, counter-clockwise about the centre, or ``None``.
        enhance: the four ImageEnhance factors (brightness, contrast, colour, sharpness).
    """

    flip: bool
    crop_box: tuple[int, int, int, int]
    angle: int | None
    enhance: tuple[float, float, float, float]


def _randint(rng: np.random.Generator, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]``, both included."""
    return int(rng.integers(low, high + 1))


def sample_aug_params(rng: np.random.Generator, size: tuple[int, int]) -> AugParams:
    """Draw one clip's augmentation for frames of ``size = (W, H)`` (the first frame's)."""
    width, height = size
    flip = bool(rng.random() < 0.5)
    crop_w = width - _randint(rng, 1, CROP_BORDER)
    crop_h = height - _randint(rng, 1, CROP_BORDER)
    if crop_w < 1 or crop_h < 1:
        raise ValueError(f"frame of {width}x{height} px is too small for the §7 crop")
    left, upper = (width - crop_w) // 2, (height - crop_h) // 2
    angle = _randint(rng, *ROTATE_RANGE) if rng.random() < ROTATE_PROB else None
    enhance = tuple(_randint(rng, low, high) / 10.0 for _, low, high in ENHANCERS)
    return AugParams(flip, (left, upper, left + crop_w, upper + crop_h), angle, enhance)


def geometric(image: Image.Image, params: AugParams) -> Image.Image:
    """Flip, crop and rotate one frame, flow image or mask (DESIGN.md §7).

    Rotation is bicubic with a zero fill on the same canvas for every kind of image, so a
    mask gets soft values along rotated edges, as in the release.
    """
    if params.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = image.crop(params.crop_box)
    if params.angle is not None:
        image = image.rotate(params.angle, resample=Image.Resampling.BICUBIC)
    return image


def photometric(frame: Image.Image, factors: Sequence[float]) -> Image.Image:
    """Brightness, contrast, colour and sharpness of an RGB frame, in that order."""
    for (name, _, _), factor in zip(ENHANCERS, factors, strict=True):
        frame = getattr(ImageEnhance, name)(frame).enhance(factor)
    return frame


def resize_image(image: Image.Image, imsize: int) -> Image.Image:
    """Resize a frame or flow image to ``imsize`` x ``imsize`` like torchvision's ``Resize``.

    PIL bilinear, antialiased when shrinking, aspect ratio ignored (DESIGN.md §7, §8).
    """
    return image.resize((imsize, imsize), Image.Resampling.BILINEAR)


def resize_mask(mask: Image.Image, imsize: int) -> Image.Image:
    """Resize a grey mask to ``imsize`` x ``imsize`` with PIL nearest."""
    return mask.resize((imsize, imsize), Image.Resampling.NEAREST)


def image_to_tensor(image: Image.Image) -> Tensor:
    """RGB PIL image -> normalised ``[3, H, W]`` float tensor (DESIGN.md §1)."""
    return normalize(TF.to_tensor(image))


def mask_to_tensor(mask: Image.Image) -> Tensor:
    """Grey PIL mask (0..255) -> ``[1, H, W]`` float tensor in [0, 1]."""
    return torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)[None]


def load_rgb(path: Path) -> Image.Image:
    """Open a frame or flow image as RGB; ``InputError`` naming a file that cannot be read."""
    return read_rgb(path)


def load_train_mask(path: Path) -> Image.Image:
    """Open a mask as grey with every value > 0 set to 255 (DESIGN.md §7; palette masks by
    index, ``util.image.read_mask``)."""
    return Image.fromarray(np.where(read_mask(path) > 0, 255, 0).astype(np.uint8), "L")


def match_size(image: Image.Image, size: tuple[int, int], mask: bool) -> Image.Image:
    """Bring a flow image or mask to its frame's ``(W, H)`` before the geometric steps.

    The release crops every image of a clip with the first frame's box, which misaligns
    flows stored at another resolution; resizing them first keeps the pixels aligned.
    """
    if image.size == size:
        return image
    resample = Image.Resampling.NEAREST if mask else Image.Resampling.BILINEAR
    return image.resize(size, resample)


def augment_clip(
    frames: Sequence[Image.Image],
    flows: Sequence[Image.Image],
    masks: Sequence[Image.Image],
    params: AugParams,
    imsize: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Apply one clip's augmentation and make tensors.

    Args:
        frames, flows: T RGB images each; masks: T grey images (0/255).
        params: from :func:`sample_aug_params` on the first frame's size.
        imsize: output side length.

    Returns:
        frames ``[T, 3, S, S]`` and flows ``[T, 3, S, S]`` normalised, masks ``[T, 1, S, S]``
        in [0, 1], with S = ``imsize``.
    """
    out_frames, out_flows, out_masks = [], [], []
    for frame, flow, mask in zip(frames, flows, masks, strict=True):
        flow = match_size(flow, frame.size, mask=False)
        mask = match_size(mask, frame.size, mask=True)
        frame = photometric(geometric(frame, params), params.enhance)
        out_frames.append(image_to_tensor(resize_image(frame, imsize)))
        out_flows.append(image_to_tensor(resize_image(geometric(flow, params), imsize)))
        out_masks.append(mask_to_tensor(resize_mask(geometric(mask, params), imsize)))
    return torch.stack(out_frames), torch.stack(out_flows), torch.stack(out_masks)
