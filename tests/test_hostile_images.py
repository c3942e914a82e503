"""PIL images given to the API read as their files do; frame links that lead nowhere stop.

A frame handed over as a PIL image (16-bit grey, palette, alpha, CMYK) becomes the same
8-bit RGB frame as the same pixels read from a file, and a frame folder holding a dangling
or looping symbolic link is refused with the link's name instead of losing a mask.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset.test_videos import make_clip
from util.errors import InputError
from util.image import as_pil_rgb, list_images, read_rgb_array

SIXTEEN = np.array([[0, 257 * 100, 65535], [128, 32896, 1000]], dtype=np.uint16)
SIXTEEN_AS_8 = np.array([[0, 100, 255], [0, 128, 4]], dtype=np.uint8)  # round(v / 257)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_sixteen_bit_pil_frames_are_scaled_as_files_are(tmp_path: Path, mode: str) -> None:
    if mode == "I":
        img = Image.fromarray(SIXTEEN.astype(np.int32), "I")
    else:
        order = ">u2" if mode == "I;16B" else "<u2"
        img = Image.frombytes(mode, (3, 2), SIXTEEN.astype(order).tobytes())
    expected = np.repeat(SIXTEEN_AS_8[..., None], 3, axis=2)
    assert np.array_equal(np.asarray(as_pil_rgb(img)), expected)
    path = tmp_path / "frame.png"
    Image.fromarray(SIXTEEN, "I;16").save(path)  # the same pixels in a 16-bit PNG
    assert np.array_equal(read_rgb_array(path), expected)


@pytest.mark.parametrize("mode", ["LA", "P", "RGBA", "L", "RGB"])
def test_other_pil_modes_read_as_their_png_files(tmp_path: Path, mode: str) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (6, 5, 4), dtype=np.uint8), "RGBA")
    img = img.convert("RGB").convert(mode) if mode == "P" else img.convert(mode)
    path = tmp_path / "frame.png"
    img.save(path)
    assert np.array_equal(np.asarray(as_pil_rgb(img)), read_rgb_array(path))


def test_cmyk_pil_frame_as_pil_reads_it(tmp_path: Path) -> None:
    img = Image.new("CMYK", (4, 3), (0, 255, 255, 0))  # pure red in CMYK
    assert np.asarray(as_pil_rgb(img))[0, 0].tolist() == [255, 0, 0]


def test_floating_point_pil_frame_is_refused_as_its_file_is() -> None:
    img = Image.fromarray(np.zeros((4, 4), dtype=np.float32), "F")
    with pytest.raises(InputError, match="a floating-point image; expected an 8- or 16-bit image"):
        as_pil_rgb(img)


def test_a_clip_of_sixteen_bit_pil_frames_equals_the_clip_of_their_8bit_arrays() -> None:
    img = Image.frombytes("I;16", (3, 2), SIXTEEN.astype("<u2").tobytes())
    rgb = np.repeat(SIXTEEN_AS_8[..., None], 3, axis=2)
    a = make_clip("v", 0, ["0"], [img], [img], (64, 64))
    b = make_clip("v", 0, ["0"], [rgb], [rgb], (64, 64))
    assert a.imgs.equal(b.imgs) and a.flows.equal(b.flows)


# ---------------------------------------------------------------------------------------
# Frame links


def _frames(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (8, 8)).save(folder / f"{i:05d}.jpg")
    return folder


def test_a_dangling_frame_link_is_named(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "v", 3)
    os.symlink(tmp_path / "gone.jpg", folder / "00003.jpg")
    with pytest.raises(InputError, match=r"00003\.jpg: a symbolic link that leads to no file"):
        list_images(folder)


def test_a_looping_frame_link_is_named(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "v", 3)
    os.symlink(folder / "00004.jpg", folder / "00003.jpg")
    os.symlink(folder / "00003.jpg", folder / "00004.jpg")
    with pytest.raises(InputError, match=r"0000[34]\.jpg: a symbolic link that leads to no file"):
        list_images(folder)


def test_a_working_frame_link_is_a_frame(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "v", 3)
    os.symlink(folder / "00000.jpg", folder / "00003.jpg")
    assert [p.name for p in list_images(folder)][-1] == "00003.jpg"
