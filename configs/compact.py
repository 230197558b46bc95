# The compact model for the later editions' rules (fewer than 1,821,085 parameters, from
# scratch): CompactFaceNet, 1,327,004 parameters, trained on the CPU in the demo. Face-aware
# online flip (left/right labels swapped), rotation, scale/shift and photometric augmentation,
# class-weighted cross-entropy + class-mean Dice. Images at half size (256x256), random 192x192
# crops, batch 8.
_base_ = [
    './_base_/models/compact_face.py',
    './_base_/faceparse_dataset.py',
    './_base_/runtime.py',
    './_base_/schedule_demo.py',
]
scale = (256, 256)
crop_size = (192, 192)
# 1/sqrt(class frequency) of the synthetic training set, / median, clipped to [0.2, 5]
class_weight = [0.2, 0.2, 0.83, 0.8, 1.34, 1.35, 1.58, 1.59, 0.98, 1.0,
                1.25, 1.39, 1.18, 0.21, 0.36, 2.13, 1.39, 0.28, 0.2]
# plus the mean soft Dice over the classes (a differentiable mean F1: the editions' F-score)
loss_decode = [
    dict(type='ClassWeightedCrossEntropyLoss', class_weight=class_weight, loss_weight=1.0, loss_name='loss_ce'),
    dict(type='ClassMeanDiceLoss', loss_weight=1.0, loss_name='loss_dice'),
]
model = dict(decode_head=dict(loss_decode=loss_decode))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRotate', prob=0.5, degree=20),
    dict(type='RandomResize', scale=scale, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlipSwapLR', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=24, contrast_range=(0.7, 1.3),
         saturation_range=(0.7, 1.3), hue_delta=12),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
iters = 1600
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=50, end=iters),
]
train_cfg = dict(max_iters=iters, val_interval=400)
default_hooks = dict(checkpoint=dict(interval=400))
