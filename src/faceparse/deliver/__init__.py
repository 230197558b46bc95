"""The deliver stage: predicted masks in, what a person or a challenge takes out.

- :mod:`.colourise` palette previews, overlays and contact sheets;
- :mod:`.package` the Codalab zip (and the later editions' ``masks/`` archive), checked
  against the test set;
- :mod:`.solution` the later editions' code submission of a CompactFaceNet model, with
  :mod:`.solution_run` (its ``run.py``, copied verbatim; imports no faceparse module).

May import: the ground floor (records, labels, parallel). No torch, no mmseg - except
:mod:`.solution`, which turns a checkpoint into a plain network (torch, :mod:`faceparse.networks`,
:mod:`faceparse.mm`) and runs only in the mmseg environment; nothing else here imports it.
"""
