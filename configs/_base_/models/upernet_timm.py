# The model both faceparse configs build: a timm backbone (faceparse's
# TimmFeatureBackbone, four feature levels) under UPerNet, 19 classes, with
# mmseg's data preprocessor. A model config sets the backbone, the channels,
# the crop size, the losses and (seed) the auxiliary head.
# The seed's statistics (train+val, from 32x32 thumbnails); faceparse replaces
# them with the exact ones of results/data/stats.json unless overridden.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[132.529, 106.677, 92.839],
    std=[77.060, 69.735, 68.295],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN on one GPU / CPU (mmengine reverts it)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='TimmFeatureBackbone', pretrained=False),
    decode_head=dict(
        type='UPerHead',
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
