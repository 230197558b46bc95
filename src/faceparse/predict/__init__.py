"""The predict stage: selected checkpoints in, masks, scores and portable models out.

A model is an ensemble of one: :mod:`.models` loads the members a rule names,
:mod:`.runner` streams a split through their views batch by batch (TTA included),
:mod:`.steps` are the evaluate and predict steps over one or several members, and
:mod:`.metrics` scores confusion matrices (mIoU, mF1). :mod:`.export` writes a model to
ONNX and checks it against PyTorch; :mod:`.onnx` holds the ONNX contract, the model
backends and the face-aware TTA parser; :mod:`.parse` is the command that parses a
folder of photos with them. :mod:`.solution` writes the later editions' code submission of a
CompactFaceNet model (its ``run.py`` is :mod:`.solution_run`, copied verbatim; it imports no
faceparse module) and checks it against the evaluate step's masks.

May import: the ground floor (records, labels, parallel), :mod:`faceparse.mm`,
:mod:`faceparse.networks`, and
:func:`faceparse.deliver.colourise.overlay` (parse's overlays). Not train or report.
"""
