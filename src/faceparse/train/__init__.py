"""The train stage: a model config and the data records in, a trained run and its selected checkpoint out.

- :mod:`.step` the train step (config -> fingerprint -> run folder -> launch -> ``train.json``);
- :mod:`.fingerprint` what determines a run's weights; :mod:`.runs` the run store (one folder per
  fingerprint, ``python -m faceparse.train.runs``);
- :mod:`.launch` starts :mod:`.process` (the training each process runs, through ``torchrun`` for
  several GPUs); :mod:`.checkpoints` which checkpoints exist, load and resume;
- :mod:`.scalars` the logged curves; :mod:`.select` picks the checkpoint (``best.json``).

May import: the ground floor (records, labels, gpus, steplog), :mod:`faceparse.model_configs`,
:mod:`faceparse.mm` (in the training process and config resolution). Not predict, deliver or report.
"""
