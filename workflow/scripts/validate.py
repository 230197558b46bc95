"""Step validate: check every image/mask pair, write the dataset index and the class-frequency plot."""
from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by Snakemake

from faceparse.data.validate import validate_dataset  # noqa: E402

validate_dataset(
    snakemake.params.root,
    snakemake.params.layout,
    snakemake.output.validation,
    snakemake.output.plot,
    threads=snakemake.threads,
    size=snakemake.params.size,
)
