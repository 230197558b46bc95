"""The predict stage: selected checkpoints in, masks and scores out.

A model is an ensemble of one: :mod:`.models` loads the members a rule names,
:mod:`.runner` streams a split through their views batch by batch (TTA included),
:mod:`.steps` are the evaluate and predict steps over one or several members, and
:mod:`.metrics` scores confusion matrices (mIoU, mF1).

May import: the ground floor (records, labels, parallel), :mod:`faceparse.mm`, and
:mod:`faceparse.train.scalars`/records through :mod:`faceparse.records`. Not deliver or report.
"""
