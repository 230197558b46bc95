# The demo model: a small timm ResNet-18 (no pretrained weights) + a narrow
# UPerNet at 256x256, trained from scratch on the synthetic faces in a few
# minutes on 2 CPU cores (fp32). Same data handling as the seed.
_base_ = [
    './_base_/faceparse_dataset.py',
    './_base_/runtime.py',
    './_base_/schedule_demo.py',
]
crop_size = (256, 256)
num_classes = 19
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        type='TimmFeatureBackbone',
        model_name='resnet18',
        pretrained=False,
        out_indices=(1, 2, 3, 4)),
    decode_head=dict(
        type='UPerHead',
        in_channels=[64, 128, 256, 512],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=64,
        dropout_ratio=0.0,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0, loss_name='loss_ce')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.9, 1.1), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlipSwapLR', prob=0.0),  # flipped copies are made offline
    dict(type='PhotoMetricDistortion', brightness_delta=16, contrast_range=(0.75, 1.25),
         saturation_range=(0.75, 1.25), hue_delta=9),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
