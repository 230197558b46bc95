# The compact model at full size for a GPU (configs/runs/challenge_2025.yaml): the later
# editions' 1000 training images at 512x512, CompactFaceNet at GPU widths from scratch
# (configs/compact_large.py: 1,693,203 parameters, a last decoder stage at full size), face-aware
# online flip, rotation, scale/shift and photometric augmentation, class-weighted cross-entropy +
# class-mean Dice. 24k iterations of batch 16 is ~380 passes over 1000 images (small networks from
# scratch need many); checkpoint + val every 2000 iterations, all kept so select can pick the best
# by mF1.
_base_ = ['./compact_large.py']
scale = (512, 512)
crop_size = (512, 512)
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
# a small network at 512 eats images faster than one worker decodes them (bench/bench_loader.py)
train_dataloader = dict(batch_size=16, num_workers=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=4e-3, weight_decay=0.01))
iters = 24000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=500, end=iters),
]
train_cfg = dict(max_iters=iters, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000, max_keep_ckpts=-1), logger=dict(interval=50))
