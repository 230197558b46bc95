"""Step package (and package_val): check the test (or val) predictions and zip them for Codalab."""
from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by Snakemake

from faceparse.deliver.package import package  # noqa: E402

package(
    snakemake.input.test_pred,
    snakemake.input.validated,
    snakemake.output.zip,
    snakemake.output.check,
    split=snakemake.params.split,  # noqa: F821 - test, or val in package_val
    threads=snakemake.threads,
)
