# faceparse's CompactFaceNet (src/faceparse/networks/compact.py, plain PyTorch) as an mmseg
# segmentor: the network is the backbone and returns logits at the input's size (a sub-pixel
# classifier at 1/2); LogitsHead only adds mmseg's losses and resizing (no parameters).
# 1,327,004 parameters with these widths.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[132.529, 106.677, 92.839],
    std=[77.060, 69.735, 68.295],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=32)
num_classes = 19
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='CompactFaceBackbone', num_classes=num_classes, detail=(16, 48, 64),
                  context=(128, 192), decoder=(96, 48, 16, 16)),
    decode_head=dict(type='LogitsHead', num_classes=num_classes, align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
