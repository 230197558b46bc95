"""Step export: the selected model as ONNX, and its parity with PyTorch on val (parity.json)."""

from faceparse.steplog import log_to_file

log_to_file(snakemake.log[0])  # injected by Snakemake

from faceparse.predict.export import export_model  # noqa: E402

export_model(
    snakemake.input.best,
    snakemake.input.train,
    snakemake.input.validated,
    onnx_path=snakemake.output.onnx,
    parity_json=snakemake.output.parity,
    framing_json=snakemake.input.framing,
    tta=dict(snakemake.params.tta),
    max_images=snakemake.params.parity_images,
    threads=snakemake.threads,
)
