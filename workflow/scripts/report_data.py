"""Report step data_samples: sample images + colour masks (original and flipped), counts, class
frequencies, stats and the training framing."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.report.sections import data_section  # noqa: E402

data_section(
    snakemake.input.validated,
    snakemake.input.get("flipped"),
    snakemake.input.stats,
    samples_png=snakemake.output.samples,
    summary_html=snakemake.output.summary,
    class_frequency_png=snakemake.output.class_frequency,
    count=snakemake.params.shown,
    source_json=snakemake.input.get("source"),
    framing_json=snakemake.input.framing,
)
