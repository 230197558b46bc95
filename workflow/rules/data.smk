# Data stages: make the source (synthetic faces or converted CelebAMask-HQ; a mini dataset
# is read in place), validate it, flip the training images (left/right labels swapped) and
# compute the normalisation statistics. Each rule handles whole splits in one job.


# Values the rules below share. Constants, not functions: `snakemake --lint` wants functions
# in common.smk, and these are plain config lookups.
# The splits the model trains on, which flip and stats cover: train (without its dev images, which
# validate moved to a dev split), plus val with train_on_val.
TRAINING_SPLITS = ["train", "val"] if config["train_on_val"] else ["train"]
# The image size validate insists on: known for generated data, else each split's most common.
EXPECTED_IMAGE_SIZE = {"synthetic": config["synthetic"]["size"], "celebamask-hq": 512}.get(config["data_layout"])
# A CelebAMask-HQ conversion reads the release folder; the synthetic generator reads nothing.
SOURCE_INPUT = {"release": config["data_root"]} if config["data_layout"] == "celebamask-hq" else {}


if is_generated_source():

    rule source:
        input:
            **SOURCE_INPUT,
        output:
            manifest="results/data/source/source.json",
        params:
            layout=config["data_layout"],
            synthetic=config["synthetic"],
            data_root=config["data_root"],
            max_images=config["celebamask_hq"]["max_images"],
            size=EXPECTED_IMAGE_SIZE,
            fingerprint=data_root_fingerprint,
        log:
            "logs/data/source.log",
        benchmark:
            "benchmarks/data/source.tsv"
        threads: workflow.cores
        conda:
            "../envs/data.yaml"
        script:
            "../scripts/make_source.py"


rule validate:
    input:
        **validate_input(),
    output:
        validation="results/data/validation.json",
    params:
        layout=config["data_layout"],
        size=EXPECTED_IMAGE_SIZE,
        fingerprint=data_root_fingerprint,
        # the config's (null: none, unless val has no masks); validate records the split in the index
        dev_split=config["dev_split"],
    log:
        "logs/data/validate.log",
    benchmark:
        "benchmarks/data/validate.tsv"
    threads: workflow.cores
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/validate.py"


rule flip:
    input:
        validation=rules.validate.output.validation,
    output:
        flipped=directory("results/data/flipped"),
        manifest="results/data/flip.json",
    params:
        splits=TRAINING_SPLITS,
    log:
        "logs/data/flip.log",
    benchmark:
        "benchmarks/data/flip.tsv"
    threads: workflow.cores
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/flip.py"


rule stats:
    input:
        validation=rules.validate.output.validation,
    output:
        stats="results/data/stats.json",
    params:
        splits=TRAINING_SPLITS,
    log:
        "logs/data/stats.log",
    benchmark:
        "benchmarks/data/stats.tsv"
    threads: 1
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/stats.py"


# Where the training faces' eyes, nose and mouth are (the class centroids of the training masks,
# and of their mirrored copies with flip): the framing `faceparse-parse --faces` aligns photos to.
# It travels with the model (the ONNX metadata, the solution's solution.json).
rule framing:
    input:
        validation=rules.validate.output.validation,
    output:
        framing="results/data/framing.json",
    params:
        splits=TRAINING_SPLITS,
        flip=config["flip"],
    log:
        "logs/data/framing.log",
    benchmark:
        "benchmarks/data/framing.tsv"
    threads: workflow.cores
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/framing.py"
