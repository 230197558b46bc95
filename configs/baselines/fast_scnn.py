# Baseline at the later editions' budget: mmseg's Fast-SCNN (its own config's widths, two
# auxiliary FCN heads), trained exactly like configs/compact.py (same data, augmentation,
# class-weighted cross-entropy + class-mean Dice, schedule) so that only the network differs.
# bench/bench_compact.py.
_base_ = ['../compact.py']
norm_cfg = dict(type='BN', requires_grad=True)
class_weight = {{_base_.class_weight}}
# the auxiliary heads: compact.py's losses (class-weighted cross-entropy + class-mean Dice) at mmseg's 0.4
aux_loss = [
    dict(type='ClassWeightedCrossEntropyLoss', class_weight=class_weight, loss_weight=0.4, loss_name='loss_ce'),
    dict(type='ClassMeanDiceLoss', loss_weight=0.4, loss_name='loss_dice'),
]
model = dict(
    backbone=dict(
        _delete_=True, type='FastSCNN', in_channels=3, downsample_dw_channels=(32, 48),
        global_in_channels=64, global_block_channels=(64, 96, 128), global_block_strides=(2, 2, 1),
        global_out_channels=128, higher_in_channels=64, lower_in_channels=128,
        fusion_out_channels=128, out_indices=(0, 1, 2), norm_cfg=norm_cfg, align_corners=False),
    decode_head=dict(
        _delete_=True, type='DepthwiseSeparableFCNHead', in_channels=128, channels=128,
        concat_input=False, num_classes=19, in_index=-1, norm_cfg=norm_cfg, align_corners=False,
        loss_decode={{_base_.loss_decode}}),
    auxiliary_head=[
        dict(type='FCNHead', in_channels=128, channels=32, num_convs=1, num_classes=19, in_index=-2,
             norm_cfg=norm_cfg, concat_input=False, align_corners=False,
             loss_decode=aux_loss),
        dict(type='FCNHead', in_channels=64, channels=32, num_convs=1, num_classes=19, in_index=-3,
             norm_cfg=norm_cfg, concat_input=False, align_corners=False,
             loss_decode=aux_loss),
    ])
