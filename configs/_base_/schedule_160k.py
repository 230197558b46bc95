# The seed's schedule: AdamW 8e-5, stage-wise layer decay 0.9 (12 layers),
# 1500-iteration linear warm-up then poly (power 1) to 0 at 160k iterations,
# fp16 with dynamic loss scale (build_config uses fp32 OptimWrapper on CPU),
# checkpoint + val every 8000 iterations.
#
# Mixed precision: `dtype` is the autocast dtype. bf16 (Ampere and newer:
# A100, RTX 30xx, H100, H200) has fp32's exponent range, so it needs no loss
# scaling; train in bf16 with the two overrides
#     optim_wrapper.dtype: bfloat16
#     optim_wrapper.loss_scale: 1.0
# (a static scale of 1 is no scaling; the scaler still skips a step whose
# gradients are not finite). The default stays the seed's fp16 until bf16 is
# measured better on a GPU (bench/bench_train.py --precision bf16|fp16).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='float16',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=8e-5, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='TimmLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=12, decay_rate=0.9, decay_type='stage_wise'))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=160000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Every 8000 iterations (the seed picked among these); an XL checkpoint with
    # its optimizer state is ~4.7 GB, so keep the newest 3 plus the best by val
    # mIoU. A pinned models.X.select_iter is kept besides them (faceparse.mm.config
    # switches this hook to PinnedCheckpointHook).
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=8000, max_keep_ckpts=3,
        save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
