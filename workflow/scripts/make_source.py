"""Step source: generate the synthetic faces or convert CelebAMask-HQ into results/data/source."""

from pathlib import Path

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.data.source import make_source  # noqa: E402

make_source(
    snakemake.params.layout,
    Path(snakemake.output.manifest).parent,
    snakemake.output.manifest,
    snakemake.threads,
    synthetic=dict(snakemake.params.synthetic),
    data_root=snakemake.params.data_root,
    max_images=snakemake.params.max_images,
    size=snakemake.params.size,
)
