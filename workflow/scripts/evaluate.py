"""Step evaluate (and ensemble_evaluate, evaluate_dev): mIoU/mF1 of val (or dev) without and with
face-aware TTA; TTA masks to val_pred/."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.predict.steps import evaluate, read_members  # noqa: E402

inp, params = snakemake.input, snakemake.params
evaluate(
    read_members(params.members, inp.best, inp.train),
    inp.validated,
    pred_dir=snakemake.output.val_pred,
    metrics_json=snakemake.output.metrics,
    scales=params.scales,
    flip=params.flip,
    weights=params.weights,
    as_ensemble=params.as_ensemble,
    split=params.split,
    device="cuda:0" if snakemake.resources.gpu else "cpu",
    batch_size=params.batch_size,
    threads=snakemake.threads,
    postprocess=params.postprocess,
)
