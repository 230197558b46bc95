"""A tiny mmseg EncoderDecoder (pretrained off) and a small dataset index, for inference tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 64


def model_cfg():
    from mmengine.config import ConfigDict

    norm = dict(type="BN", requires_grad=True)
    return ConfigDict(
        type="EncoderDecoder",
        data_preprocessor=dict(
            type="SegDataPreProcessor", mean=[128.0] * 3, std=[64.0] * 3, bgr_to_rgb=True, pad_val=0, seg_pad_val=255
        ),
        pretrained=None,
        backbone=dict(
            type="ResNet",
            depth=18,
            stem_channels=8,
            base_channels=8,
            num_stages=4,
            out_indices=(3,),
            norm_cfg=norm,
            init_cfg=None,
        ),
        decode_head=dict(
            type="FCNHead",
            in_channels=64,
            in_index=0,
            channels=8,
            num_convs=1,
            concat_input=False,
            num_classes=19,
            norm_cfg=norm,
            align_corners=False,
            loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
        ),
        train_cfg=dict(),
        test_cfg=dict(mode="whole"),
    )


def tiny_test_pipeline() -> list[dict]:
    return [
        dict(type="LoadImageFromFile"),
        dict(type="Resize", scale=(SIZE, SIZE), keep_ratio=True),
        dict(type="LoadAnnotations", reduce_zero_label=False),
        dict(type="PackSegInputs"),
    ]


def write_config(path: Path) -> Path:
    """A resolved-looking mmseg config file (what the train step dumps), minus training keys."""
    from mmengine.config import Config

    cfg = Config(
        dict(
            default_scope="mmseg",
            model=model_cfg(),
            test_pipeline=tiny_test_pipeline(),
            test_dataloader=dict(
                batch_size=1,
                num_workers=0,
                sampler=dict(type="DefaultSampler", shuffle=False),
                dataset=dict(type="BaseSegDataset", data_root="", pipeline=tiny_test_pipeline()),
            ),
        )
    )
    cfg.dump(str(path))
    return path


def write_checkpoint(path: Path, seed: int = 0) -> Path:
    """Random weights for the tiny model, saved like mmengine does (state_dict + meta)."""
    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope("mmseg")
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg())
    model.init_weights()
    # Give BN non-trivial statistics so predictions vary over the image.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return path


def write_split(root: Path, split: str, n: int, with_masks: bool, odd_size: bool = False) -> dict:
    rng = np.random.default_rng(sum(map(ord, split)))
    images = root / split / "images"
    masks = root / split / "masks"
    images.mkdir(parents=True)
    if with_masks:
        masks.mkdir(parents=True)
    names = [f"{split}_{i:02d}" for i in range(n)]
    for i, name in enumerate(names):
        h, w = (48, SIZE) if (odd_size and i == n - 1) else (SIZE, SIZE)
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(images / f"{name}.jpg", quality=95)
        if with_masks:
            mask = rng.integers(0, 19, (h, w), dtype=np.uint8)
            mask[0, :4] = 255  # ignored pixels
            Image.fromarray(mask, mode="L").save(masks / f"{name}.png")
    return {
        "image_dir": str(images),
        "mask_dir": str(masks) if with_masks else None,
        "image_suffix": ".jpg",
        "names": names,
        "images": n,
        "size": [SIZE, SIZE],
    }


def write_index(root: Path, splits: dict) -> Path:
    path = root / "validation.json"
    path.write_text(json.dumps({"root": str(root), "layout": "mini", "splits": splits}))
    return path
