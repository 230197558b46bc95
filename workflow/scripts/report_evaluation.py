"""Report step evaluation_plots: IoU/F1 bars, confusion heatmap, worst val images, table of the numbers."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.report.sections import evaluation_section  # noqa: E402

evaluation_section(
    snakemake.input.metrics,
    snakemake.input.validated,
    snakemake.input.val_pred,
    bars_png=snakemake.output.scores,
    confusion_png=snakemake.output.confusion,
    worst_png=snakemake.output.worst,
    table_html=snakemake.output.table,
    model=snakemake.wildcards.model,
    count=snakemake.params.shown,
    threads=snakemake.threads,
)
