"""A fast writer for label masks: single-channel 8-bit PNG, no row filter, run-length zlib.

Label maps are long runs of one value; zlib's Z_RLE strategy packs them smaller than PIL's
default (adaptive row filters + deflate) and about three times faster, which matters when
the flip step writes a mask per training image. Any PNG reader reads the result (mode 'L').
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_label_png(mask: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) uint8 label map."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"expected an (H, W) uint8 label map, got {mask.dtype} {mask.shape}")
    h, w = mask.shape
    rows = np.zeros((h, w + 1), np.uint8)  # each row: filter type 0 (none), then the pixels
    rows[:, 1:] = mask
    packer = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = packer.compress(rows.tobytes()) + packer.flush()
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit grayscale, no interlace
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def write_label_png(path: str | Path, mask: np.ndarray) -> None:
    Path(path).write_bytes(encode_label_png(mask))
