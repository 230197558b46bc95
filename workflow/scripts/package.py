"""Step package (and package_val, package_masks): check the test (or val) predictions and zip
them for Codalab (at the archive's top level) or for the later editions (params.folder: masks/)."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.deliver.package import package  # noqa: E402

package(
    snakemake.input.test_pred,
    snakemake.input.validated,
    snakemake.output.zip,
    snakemake.output.check,
    split=snakemake.params.split,  # test, or val in package_val
    threads=snakemake.threads,
    folder=snakemake.params.get("folder", ""),
)
