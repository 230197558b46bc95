"""Step validate: check every image/mask pair, write the dataset index."""

from pathlib import Path

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.data.validate import validate_dataset  # noqa: E402

# The input is a mini dataset's folder, or the manifest (source.json) inside a generated one.
source = Path(snakemake.input.source)
validate_dataset(
    source.parent if source.is_file() else source,
    snakemake.params.layout,
    snakemake.output.validation,
    threads=snakemake.threads,
    size=snakemake.params.size,
    dev_split=snakemake.params.dev_split,
)
