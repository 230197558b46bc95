# Runtime: mmseg's defaults plus faceparse's registered modules.
default_scope = 'mmseg'
custom_imports = dict(imports=['faceparse.mm'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # build_config switches this to gloo for CPU runs
    dist_cfg=dict(backend='nccl'))
# TensorBoard event files of a run go to {run}/tensorboard (faceparse.mm.config sets save_dir):
# one curve per run that continues across resumes; `make tensorboard` serves results/models.
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
# faceparse.train.process resumes from the work_dir's last checkpoint when there is one.
resume = False
randomness = dict(seed=0)
# A longer rerun (train_cfg.max_iters raised) stretches the schedule, not the checkpoint's.
custom_hooks = [dict(type='ResumeScheduleHook')]
tta_model = dict(type='FaceSegTTAModel')
