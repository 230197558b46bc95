"""Step evaluate: val mIoU/mF1 without and with face-aware TTA; TTA masks to val_pred/."""
from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by Snakemake

from faceparse.inference import evaluate_model  # noqa: E402

evaluate_model(
    snakemake.input.best,
    snakemake.input.train,
    snakemake.input.validated,
    pred_dir=snakemake.output.val_pred,
    metrics_json=snakemake.output.metrics,
    scales=snakemake.params.scales,
    flip=snakemake.params.flip,
    device="cuda:0" if snakemake.resources.gpu else "cpu",
    batch_size=snakemake.params.batch_size,
    threads=snakemake.threads,
)
