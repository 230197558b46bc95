"""The report stage: figures and tables for `snakemake --report`, and the provenance record.

- :mod:`faceparse.report.sections` — one function per report section (data, training,
  evaluation, submission): reads the records and writes that section's figures and tables.
- :mod:`faceparse.report.figures` — matplotlib figures (Agg, ~100 dpi, small PNGs) from plain data.
- :mod:`faceparse.report.tables` — the HTML tables.
- :mod:`faceparse.report.leaderboard` — all models and ensembles side by side.
- :mod:`faceparse.report.provenance` — what produced a result: git commit and
  dirty state, code and dataset fingerprints, package versions, checkpoint
  hashes, per-step run times from Snakemake's benchmark files.

May import: the ground floor, and the torch-free readers of the stages before it
(:mod:`faceparse.train.scalars`, :mod:`faceparse.predict.metrics`,
:func:`faceparse.deliver.colourise.overlay`). No torch, no mmseg.
"""
