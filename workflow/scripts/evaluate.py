"""Step evaluate (and ensemble_evaluate, evaluate_dev): mIoU/mF1 of val (or dev) without and with face-aware TTA; TTA masks to val_pred/."""
from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by Snakemake

from faceparse.predict.steps import evaluate, read_members  # noqa: E402

inp, params = snakemake.input, snakemake.params  # noqa: F821
evaluate(
    read_members(params.members, inp.best, inp.train),
    inp.validated,
    pred_dir=snakemake.output.val_pred,  # noqa: F821
    metrics_json=snakemake.output.metrics,  # noqa: F821
    scales=params.scales,
    flip=params.flip,
    weights=params.weights,
    as_ensemble=params.as_ensemble,
    split=params.split,
    device="cuda:0" if snakemake.resources.gpu else "cpu",  # noqa: F821
    batch_size=params.batch_size,
    threads=snakemake.threads,  # noqa: F821
)
