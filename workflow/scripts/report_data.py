"""Report step data_samples: sample images + colour masks (original and flipped), counts and stats."""
from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by Snakemake

from faceparse.report.class_frequency import class_frequency_plot  # noqa: E402
from faceparse.report.sections import data_section  # noqa: E402

data_section(
    snakemake.input.validated,
    snakemake.input.get("flipped"),
    snakemake.input.stats,
    samples_png=snakemake.output.samples,
    summary_html=snakemake.output.summary,
    count=snakemake.params.shown,
    source_json=snakemake.input.get("source"),
)
class_frequency_plot(snakemake.input.validated, snakemake.output.class_frequency)
