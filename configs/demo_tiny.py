# The demo model: a small timm ResNet-18 (no pretrained weights) + a narrow
# UPerNet, trained from scratch on the synthetic faces in about 5 minutes on
# 2 CPU cores (fp32): images resized to 256x256, random 192x192 crops, batch 4,
# 800 iterations; class-weighted cross-entropy so the small parts (eyes,
# brows, lips, earrings, necklace) are learnt within that budget.
_base_ = [
    './_base_/models/upernet_timm.py',
    './_base_/faceparse_dataset.py',
    './_base_/runtime.py',
    './_base_/schedule_demo.py',
]
scale = (256, 256)  # the 512x512 data at half size
crop_size = (192, 192)
num_classes = 19
# 1/sqrt(class frequency) of the synthetic training set, / median, clipped to
# [0.2, 5]; CelebAMask-HQ's class proportions are alike.
class_weight = [0.2, 0.2, 0.83, 0.8, 1.34, 1.35, 1.58, 1.59, 0.98, 1.0,
                1.25, 1.39, 1.18, 0.21, 0.36, 2.13, 1.39, 0.28, 0.2]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # pad batches to a multiple of 32 (the crops in training, whole images in val)
    data_preprocessor=dict(size_divisor=32),
    backbone=dict(model_name='resnet18', out_indices=(1, 2, 3, 4)),
    decode_head=dict(
        in_channels=[64, 128, 256, 512],
        channels=64,
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        # mmseg's CrossEntropyLoss with class weights fails on ignored (255) pixels
        loss_decode=dict(type='ClassWeightedCrossEntropyLoss', class_weight=class_weight, loss_weight=1.0,
                         loss_name='loss_ce')))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=scale, ratio_range=(0.9, 1.1), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlipSwapLR', prob=0.0),  # flipped copies are made offline
    dict(type='PhotoMetricDistortion', brightness_delta=16, contrast_range=(0.75, 1.25),
         saturation_range=(0.75, 1.25), hue_delta=9),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
