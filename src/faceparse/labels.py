"""The 19 CelebAMask-HQ classes, their palette, the left/right pairs and the ignore value.

Label policy: a mask pixel holds a class 0..18, or IGNORE_INDEX (255) for "not labelled".
255 is mmsegmentation's ignore index: training skips it (loss and RandomRotate's padding),
metrics do not count it, validate accepts it, and previews paint it in IGNORE_COLOUR (white),
which no class uses. Any other value is refused by validate.
"""

from __future__ import annotations

import numpy as np

CLASSES: tuple[str, ...] = (
    "background",
    "skin",
    "nose",
    "eye_g",
    "l_eye",
    "r_eye",
    "l_brow",
    "r_brow",
    "l_ear",
    "r_ear",
    "mouth",
    "u_lip",
    "l_lip",
    "hair",
    "hat",
    "ear_r",
    "neck_l",
    "neck",
    "cloth",
)
NUM_CLASSES = len(CLASSES)

PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (204, 0, 0),
    (76, 153, 0),
    (204, 204, 0),
    (51, 51, 255),
    (204, 0, 204),
    (0, 255, 255),
    (255, 204, 204),
    (102, 51, 0),
    (255, 0, 0),
    (102, 204, 0),
    (255, 255, 0),
    (0, 0, 153),
    (0, 0, 204),
    (255, 51, 153),
    (0, 204, 204),
    (0, 51, 0),
    (255, 153, 51),
    (0, 204, 0),
)

# Left/right pairs a horizontal flip must swap.
LR_PAIRS: tuple[tuple[int, int], ...] = ((4, 5), (6, 7), (8, 9))


def _swap_permutation() -> np.ndarray:
    perm = np.arange(NUM_CLASSES, dtype=np.uint8)
    for left, right in LR_PAIRS:
        perm[left], perm[right] = right, left
    return perm


# SWAP[label] is the label after a horizontal flip; also the channel order that
# turns a flipped prediction's class scores back into the unflipped order.
SWAP: np.ndarray = _swap_permutation()
SWAP.setflags(write=False)

# A 256-entry lookup table for uint8 masks (values >= 19 map to themselves).
SWAP_LUT: np.ndarray = np.concatenate([SWAP, np.arange(NUM_CLASSES, 256, dtype=np.uint8)])
SWAP_LUT.setflags(write=False)

IGNORE_INDEX = 255
IGNORE_COLOUR: tuple[int, int, int] = (255, 255, 255)

# Colour of every uint8 value: the classes' palette, IGNORE_COLOUR for 255 (and for any other
# value, which validate refuses and a model cannot predict).
_COLOUR_LUT = np.array(PALETTE + (IGNORE_COLOUR,) * (256 - NUM_CLASSES), dtype=np.uint8)
_COLOUR_LUT.setflags(write=False)


def colour_mask(mask: np.ndarray) -> np.ndarray:
    """Map an (H, W) uint8 label mask to an (H, W, 3) RGB image in the CelebAMask-HQ palette."""
    return _COLOUR_LUT[np.asarray(mask, dtype=np.uint8)]
