"""Step predict: face-aware TTA masks for the test split into test_pred/."""
from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by Snakemake

from faceparse.inference import predict_model  # noqa: E402

predict_model(
    snakemake.input.best,
    snakemake.input.train,
    snakemake.input.validated,
    pred_dir=snakemake.output.test_pred,
    scales=snakemake.params.scales,
    flip=snakemake.params.flip,
    device="cuda:0" if snakemake.resources.gpu else "cpu",
    batch_size=snakemake.params.batch_size,
    threads=snakemake.threads,
)
