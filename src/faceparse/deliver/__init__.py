"""The deliver stage: predicted masks in, what a person or a challenge takes out.

- :mod:`.colourise` palette previews, overlays and contact sheets;
- :mod:`.package` the Codalab zip (and the later editions' ``masks/`` archive), checked
  against the test set;

May import: the ground floor (records, labels, parallel). No torch, no mmseg.
"""
