"""Report step submission_summary: a grid of test predictions and the submission check as a table."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.report.sections import submission_section  # noqa: E402

submission_section(
    snakemake.input.validated,
    snakemake.input.test_pred,
    snakemake.input.check,
    snakemake.input.zip,
    grid_png=snakemake.output.grid,
    check_html=snakemake.output.check,
    model=snakemake.wildcards.model,
    count=snakemake.params.shown,
)
