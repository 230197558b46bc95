# Face parsing data: 19 CelebAMask-HQ classes, 512x512 images with PNG masks.
# The seed solution's augmentation. Data paths (data_prefix, ann_file) and the
# normalisation are filled at run time by faceparse.mm.config.build_config from
# results/data/{validation,flip,stats}.json; the train set becomes a
# ConcatDataset of train (+ flipped train) (+ val).
dataset_type = 'FaceParseDataset'
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRotate', prob=0.5, degree=25),
    dict(type='RandomResize', scale=(512, 512), ratio_range=(1.0, 1.2), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    # Online flipping is off: the flipped copies (labels swapped) are made
    # offline (config `flip: true`). Set prob > 0 to flip online instead;
    # unlike mmcv's RandomFlip this swaps the left/right labels.
    dict(type='RandomFlipSwapLR', prob=0.0),
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=16,
        contrast_range=(0.75, 1.25),
        saturation_range=(0.75, 1.25),
        hue_delta=9),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 512), keep_ratio=True),
    # after Resize: the ground truth stays at the image's own size
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# 4 workers: one runs this pipeline at 512 at ~115-150 images/s (bench/bench_loader.py
# on one 2-core-machine core); the seed model at the 35%-MFU bf16 target on an H100
# would take ~110 images/s, i.e. 2 workers with 1.5x headroom. 4 leave room for
# slower cores; bench_loader --train-json <bench_train JSON> says what a node needs.
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root='',
        ann_file='',
        data_prefix=dict(img_path='', seg_map_path=''),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root='',
        ann_file='',
        data_prefix=dict(img_path='', seg_map_path=''),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mmseg's mIoU plus mF1 (18 foreground classes) and mF1_19 (all 19): faceparse.mm.evaluation
val_evaluator = dict(type='FaceParseMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
