"""Report step training_curves: loss, val mIoU and lr over iterations, the selected checkpoint marked."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.report.sections import training_section  # noqa: E402

training_section(
    snakemake.input.train,
    snakemake.input.best,
    curves_png=snakemake.output.curves,
    model=snakemake.wildcards.model,
)
