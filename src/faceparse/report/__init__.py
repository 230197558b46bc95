"""The report stage: figures and tables for `snakemake --report`, and the provenance record.

- :mod:`faceparse.report.plots` — matplotlib figures (Agg, ~100 dpi, small PNGs)
  and HTML tables for the data, training, evaluation and submission sections.
- :mod:`faceparse.report.provenance` — what produced a result: git commit and
  dirty state, code and dataset fingerprints, package versions, checkpoint
  hashes, per-step run times from Snakemake's benchmark files.
"""
