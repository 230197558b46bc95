# Baseline at the later editions' budget: mmseg's UNet (5 stages, base width 16) under an
# FCN head, trained exactly like configs/compact.py (same data, augmentation, class-weighted
# cross-entropy + class-mean Dice, schedule) so that only the network differs. bench/bench_compact.py.
_base_ = ['../compact.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True, type='UNet', in_channels=3, base_channels=16, num_stages=5,
        strides=(1, 1, 1, 1, 1), enc_num_convs=(2, 2, 2, 2, 2), dec_num_convs=(2, 2, 2, 2),
        downsamples=(True, True, True, True), enc_dilations=(1, 1, 1, 1, 1), dec_dilations=(1, 1, 1, 1),
        with_cp=False, conv_cfg=None, norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'),
        upsample_cfg=dict(type='InterpConv'), norm_eval=False),
    decode_head=dict(
        _delete_=True, type='FCNHead', in_channels=16, in_index=4, channels=16, num_convs=1,
        concat_input=False, dropout_ratio=0.0, num_classes=19, norm_cfg=norm_cfg, align_corners=False,
        loss_decode={{_base_.loss_decode}}))
