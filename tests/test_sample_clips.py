"""util.sample's random clips of the sample's kind, and the bundled sample left unchanged."""

from __future__ import annotations

import numpy as np

from util.image import list_images, read_mask, read_rgb_array
from util.sample import make_clip, mask_dir, random_clip, write_clips


def test_the_bundled_sample_is_still_what_make_clip_draws():
    _, masks = make_clip()
    shipped = list_images(mask_dir())
    assert len(shipped) == len(masks)
    for path, mask in zip(shipped, masks, strict=True):
        np.testing.assert_array_equal(read_mask(path), mask)


def test_random_clips_are_seeded_distinct_and_written_with_sparse_masks(tmp_path):
    a1, m1 = random_clip(3, 4, (48, 64))
    a2, _ = random_clip(3, 4, (48, 64))
    b, mb = random_clip(4, 4, (48, 64))
    assert all(np.array_equal(x, y) for x, y in zip(a1, a2, strict=True))
    assert not np.array_equal(a1[0], b[0]) and not np.array_equal(m1[0], mb[0])
    assert a1[0].shape == (48, 64, 3) and set(np.unique(m1[0])) == {0, 255}
    assert all(m.any() for m in m1)  # the disc stays in view
    names = write_clips(tmp_path, 2, num_frames=5, size=(48, 64), first=3, mask_every=2)
    assert names == ["clip003", "clip004"]
    frames = list_images(tmp_path / "frames" / "clip003")
    assert [p.name for p in frames] == [f"{t:05d}.png" for t in range(5)]
    assert [p.name for p in list_images(tmp_path / "masks" / "clip003")] == [
        "00000.png", "00002.png", "00004.png"
    ]  # fmt: skip
    written, _ = random_clip(3, 5, (48, 64))
    np.testing.assert_array_equal(read_rgb_array(frames[1]), written[1])  # lossless
