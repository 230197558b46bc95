"""Step colourise: palette previews and overlays of the val and test predictions."""

from pathlib import Path

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.deliver.colourise import colourise  # noqa: E402

colourise(
    snakemake.input.validated,
    {"val": snakemake.input.val_pred, "test": snakemake.input.test_pred},
    Path(snakemake.output.done).parent,
    snakemake.output.done,
    grids={"val": snakemake.output.val_grid, "test": snakemake.output.test_grid},
    threads=snakemake.threads,
)
