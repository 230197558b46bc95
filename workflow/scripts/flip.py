"""Step flip: mirrored training images (lossless) and masks with left/right labels swapped."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.data.flip import flip_dataset  # noqa: E402

flip_dataset(
    snakemake.input.validation,
    snakemake.output.flipped,
    snakemake.output.manifest,
    threads=snakemake.threads,
    splits=list(snakemake.params.splits),
)
