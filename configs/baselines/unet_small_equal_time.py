# The small UNet (configs/baselines/unet_small.py) at equal CPU time instead of equal
# iterations: a full schedule of 440 iterations (warm-up, poly decay to zero), which costs on
# the CPU about what CompactFaceNet's 1600 do (bench/bench_train.py: 0.80 s/iter against 0.21).
# Checkpoint + val every 110 iterations. bench/bench_compact.py.
_base_ = ['./unet_small.py']
iters = 440
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=50, end=iters),
]
train_cfg = dict(max_iters=iters, val_interval=110)
default_hooks = dict(checkpoint=dict(interval=110))
