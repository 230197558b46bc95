"""The label-mask PNG writer: any reader gets the exact labels back, as an 8-bit 'L' image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceparse.data.png import write_label_png


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (64, 48)])
def test_roundtrip(tmp_path, shape):
    mask = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    mask[: shape[0] // 2] = 4  # runs, as in a label map
    write_label_png(tmp_path / "m.png", mask)
    with Image.open(tmp_path / "m.png") as im:
        assert im.format == "PNG" and im.mode == "L" and im.size == (shape[1], shape[0])
        np.testing.assert_array_equal(np.asarray(im), mask)


def test_refuses_non_label_arrays(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_label_png(tmp_path / "m.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_label_png(tmp_path / "m.png", np.zeros((4, 4), np.uint16))
