"""Plain-PyTorch networks: files that import nothing but torch, so a code submission carries
them unchanged. :mod:`faceparse.mm.compact` registers them in mmseg.

May import: torch only (not faceparse, mmseg, mmcv, mmengine or timm).
"""
