# Export the selected checkpoint to ONNX (single scale; dynamic batch, height and width;
# normalisation inside the graph) and check it against PyTorch on the val images (up to
# parity_images of them): the ONNX masks must equal PyTorch's on >= 99.9% of the pixels
# (parity.json), else the job fails.
# onnxruntime runs it on the CPU; `python -m faceparse.predict.parse` takes the .onnx file.


rule export:
    input:
        best=rules.select.output.best,
        train=rules.train.output.train,
        validated=rules.validate.output.validation,
        framing=rules.framing.output.framing,
    output:
        onnx="results/models/{model}/export/{model}.onnx",
        parity=report(
            "results/models/{model}/export/parity.json",
            caption="../report/export_parity.rst",
            category="Export",
            labels={"model": "{model}", "file": "ONNX parity (JSON)"},
        ),
    params:
        # The TTA evaluate and predict use, recorded in the model for faceparse.predict.parse.
        tta=config["tta"],
        # Val images compared (evenly spaced; all of a smaller split): both runtimes run on the
        # CPU, and a full CelebAMask-HQ val split (2993 images) would take hours with a big model.
        parity_images=200,
    log:
        "logs/models/{model}/export.log",
    benchmark:
        "benchmarks/models/{model}/export.tsv"
    threads: min(4, workflow.cores)
    conda:
        "../envs/mmseg.yaml"
    script:
        "../scripts/export.py"
