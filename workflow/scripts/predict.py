"""Step predict (and ensemble_predict, predict_val): face-aware TTA masks of a split (test, or val) into test_pred/."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.predict.steps import predict, read_members  # noqa: E402

inp, params = snakemake.input, snakemake.params
predict(
    read_members(params.members, inp.best, inp.train),
    inp.validated,
    pred_dir=snakemake.output.test_pred,  # val's predictions in predict_val
    split=params.split,
    scales=params.scales,
    flip=params.flip,
    weights=params.weights,
    device="cuda:0" if snakemake.resources.gpu else "cpu",
    batch_size=params.batch_size,
    threads=snakemake.threads,
    postprocess=params.postprocess,
)
