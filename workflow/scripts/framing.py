"""Step framing: where the training faces' eyes, nose and mouth are (framing.json)."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.data.framing import framing_step  # noqa: E402

framing_step(
    snakemake.input.validation,
    snakemake.output.framing,
    splits=list(snakemake.params.splits),
    flip=bool(snakemake.params.flip),
    threads=snakemake.threads,
)
