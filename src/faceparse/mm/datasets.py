"""The face-parsing dataset: 19 CelebAMask-HQ classes, images + PNG masks, listed stems."""

from __future__ import annotations

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from faceparse.labels import CLASSES, IGNORE_INDEX, PALETTE


@DATASETS.register_module()
class FaceParseDataset(BaseSegDataset):
    """A split of face images with label masks (values 0..18, IGNORE_INDEX 255 ignored).

    ``ann_file`` lists the image stems, one a line (written by
    :func:`faceparse.mm.config.build_config` from ``validation.json``);
    ``data_prefix=dict(img_path=..., seg_map_path=...)`` gives the folders.
    """

    METAINFO = dict(classes=CLASSES, palette=[list(c) for c in PALETTE])

    def __init__(
        self,
        img_suffix: str = ".jpg",
        seg_map_suffix: str = ".png",
        reduce_zero_label: bool = False,
        ignore_index: int = IGNORE_INDEX,
        **kwargs,
    ) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            ignore_index=ignore_index,
            **kwargs,
        )
