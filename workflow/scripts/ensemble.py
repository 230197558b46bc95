"""Steps ensemble_evaluate and ensemble_predict: the members' TTA probabilities averaged per
image; val scores (val_metrics.json) and masks, or the test masks."""
from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821 - injected by Snakemake

from faceparse.ensemble import evaluate_ensemble, predict_ensemble, read_member  # noqa: E402

inp, params, out = snakemake.input, snakemake.params, snakemake.output  # noqa: F821
members = [read_member(name, best, train) for name, best, train in zip(params.members, inp.best, inp.train)]
common = dict(
    scales=params.scales,
    flip=params.flip,
    device="cuda:0" if snakemake.resources.gpu else "cpu",  # noqa: F821
    batch_size=params.batch_size,
    threads=snakemake.threads,  # noqa: F821
)
if "metrics" in out.keys():
    evaluate_ensemble(members, params.weights, inp.validated, pred_dir=out.val_pred, metrics_json=out.metrics,
                      **common)
else:
    predict_ensemble(members, params.weights, inp.validated, pred_dir=out.test_pred, **common)
