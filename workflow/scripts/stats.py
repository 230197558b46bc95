"""Step stats: exact per-channel mean and std of the training images."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.data.stats import channel_stats  # noqa: E402

channel_stats(
    snakemake.input.validation,
    snakemake.output.stats,
    splits=list(snakemake.params.splits),
)
