"""Step solution: the later editions' code submission of a CompactFaceNet model (run.py, its
network file, ckpt.pth, solution.json, Readme.txt), checked against the evaluate step's masks."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.predict.solution import build_solution  # noqa: E402

inp, params = snakemake.input, snakemake.params
build_solution(
    snakemake.wildcards.model,
    inp.best,
    inp.train,
    inp.metrics,
    inp.validated,
    inp.val_pred,
    out_dir=snakemake.output.solution,
    parity_json=snakemake.output.parity,
    framing_json=inp.framing,
    scales=params.scales,
    flip=params.flip,
    postprocess=params.postprocess,
    parity_images=params.parity_images,
    threads=snakemake.threads,
)
