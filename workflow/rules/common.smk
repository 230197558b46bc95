# Helpers shared by the rules: paths, config lookups, input functions.
# (The Snakefile put src/ on sys.path and PYTHONPATH: the faceparse package is importable.)
from functools import lru_cache
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The repository: two levels above this file (workflow/rules/), whichever Snakefile includes it.
REPO_ROOT = Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).resolve().parents[1]

MODELS = list(config["models"])
SPLITS = ("train", "val", "test")

from faceparse.workflow import (
    check_dev_split,
    check_ensembles,
    check_workflow_models,
    code_state,
    dataset_root,
    solution_models,
    source_fingerprint,
    submission_code_state,
    test_released,
    val_has_masks,
)

# What the schema cannot say, refused here, before any job: members must be configured
# models; override keys must exist in the model's config and keep their values' kinds;
# a pinned select_iter must be a checkpoint the run will save; the challenge's rules
# (parameter budget, no pretrained weights, no ensembles) hold. What that needs to know of each
# model (the files its config inherits, its parameter count, ...) is cached by everything it
# depends on (faceparse.model_facts): a dry-run of an unchanged project imports neither mmengine
# nor torch.
check_ensembles(config["ensembles"], MODELS)
MODEL_FACTS = check_workflow_models(config, REPO_ROOT)
ENSEMBLES = list(config["ensembles"])
# The CompactFaceNet models: each gets the later editions' deliverables (rules package_masks, solution).
SOLUTION_MODELS = solution_models(MODEL_FACTS)
# Val without masks (one edition ships val images only), or a configured dev_split: a dev split
# carved out of train (by validate, recorded in the dataset index) selects the checkpoint; val is
# then scored when it has masks, else predicted and packaged like test. Refused here, before any
# job: a bad fraction, a split that leaves train empty, train_on_val without val masks.
# A mini dataset's folder: data_root, or the release zips it names, unpacked once (checked first).
DATASET_ROOT = dataset_root(config)
VAL_HAS_MASKS = val_has_masks(config, DATASET_ROOT)
DEV_SPLIT = check_dev_split(config, VAL_HAS_MASKS, DATASET_ROOT)
# The test images come a week before the deadline: until they are in the dataset, the steps that
# need them (test predictions, the zips, the masks archive, colour previews) are left out of
# `all` and of the report, and the rest runs; once added, those run (training finds its run).
TEST_RELEASED = test_released(config, DATASET_ROOT)
# The split evaluate scores: val, or dev when val has no masks.
EVAL_SPLIT = "val" if VAL_HAS_MASKS else "dev"


wildcard_constraints:
    model="|".join(MODELS),
    # (?!) matches nothing: without ensembles no path is an ensemble's
    ensemble="|".join(ENSEMBLES) or "(?!)",


def is_generated_source() -> bool:
    """Synthetic and celebamask-hq data are written to results/data/source; mini is used in place."""
    return config["data_layout"] != "mini"


def data_root() -> str:
    """Where validate reads the dataset (the schema makes sure a mini layout has data_root)."""
    return "results/data/source" if is_generated_source() else DATASET_ROOT


@lru_cache(maxsize=1)
def _data_root_fingerprint() -> str:
    return source_fingerprint(config["data_layout"], DATASET_ROOT)


def data_root_fingerprint(wildcards) -> str:
    """Paths, sizes and mtimes of the files a data root holds (a mini set, or the CelebAMask-HQ
    release), hashed when the DAG is built: a param of the rule that reads the root, so adding
    or replacing a file reruns it (Snakemake sees only the folder's own mtime)."""
    return _data_root_fingerprint()


def validate_input() -> dict:
    """What validate reads: the generated source's manifest, or the mini root itself."""
    if is_generated_source():
        return {"source": "results/data/source/source.json"}
    return {"source": data_root()}


def val_predictions(wildcards) -> str:
    """The val split's TTA masks (colour previews): evaluate's, or predict_val's when val has no masks."""
    return rules.evaluate.output.val_pred if VAL_HAS_MASKS else rules.predict_val.output.test_pred


def ensemble_val_predictions(wildcards) -> str:
    """An ensemble's val TTA masks, as :func:`val_predictions`."""
    return rules.ensemble_evaluate.output.val_pred if VAL_HAS_MASKS else rules.ensemble_predict_val.output.test_pred


def model_cfg(model: str) -> dict:
    return config["models"][model]


def model_gpus(wildcards) -> int:
    return int(model_cfg(wildcards.model).get("gpus", 0))


def inference_gpus(wildcards) -> int:
    """Inference uses one GPU when the model trains on GPUs, else none."""
    return min(1, model_gpus(wildcards))


def model_config_file(wildcards) -> str:
    """The model's mmseg config; a relative path is taken from the repository root."""
    return str(REPO_ROOT / model_cfg(wildcards.model)["config"])


def train_inputs(wildcards) -> dict:
    """Data index, statistics, the model config and every file it inherits (+ the flipped set)."""
    inputs = {
        "validation": rules.validate.output.validation,
        "stats": rules.stats.output.stats,
        "config": model_config_file(wildcards),
        "bases": MODEL_FACTS[wildcards.model].sources[1:],
    }
    if config["flip"]:
        inputs["flip"] = rules.flip.output.manifest
    return inputs


def train_threads(wildcards) -> int:
    """CPU training uses every core it is given; a GPU job a few data workers per GPU."""
    gpus = model_gpus(wildcards)
    return workflow.cores if gpus == 0 else max(1, min(workflow.cores, 8 * gpus))


def model_overrides(wildcards) -> dict:
    return dict(model_cfg(wildcards.model).get("overrides") or {})


def model_select_iter(wildcards):
    return model_cfg(wildcards.model).get("select_iter")


# --- report stage
REPORT_DIR = "results/report"


@lru_cache(maxsize=1)
def _code_state() -> dict:
    return code_state(REPO_ROOT)


def provenance_code_state(wildcards) -> dict:
    """Git commit, dirty flag, changed files and a code fingerprint, computed when the DAG is
    built: a param of rule provenance, so any change of them reruns it."""
    return _code_state()


@lru_cache(maxsize=1)
def _submission_code_state() -> dict:
    return submission_code_state(REPO_ROOT, _code_state())


def grading_code_state(wildcards) -> dict:
    """The commit and a fingerprint of every file the grading zip packs as its code, computed
    when the DAG is built: a param of rule grading, so an edit of any of them remakes the zip."""
    return _submission_code_state()


def data_samples_input(wildcards) -> dict:
    """Dataset index, stats and framing, the flipped set when training uses it, and the source manifest."""
    inputs = {
        "validated": rules.validate.output.validation,
        "stats": rules.stats.output.stats,
        "framing": rules.framing.output.framing,
    }
    if config["flip"]:
        inputs["flipped"] = rules.flip.output.manifest
    if is_generated_source():
        inputs["source"] = rules.source.output.manifest
    return inputs


def ensemble_inputs(wildcards) -> dict:
    """The members' best.json and train.json (in the ensemble's order) and the dataset index."""
    members = config["ensembles"][wildcards.ensemble]["models"]
    return {
        "best": expand(str.__str__(rules.select.output.best), model=members),
        "train": expand(str.__str__(rules.train.output.train), model=members),
        "validated": rules.validate.output.validation,
    }


def ensemble_members(wildcards) -> list[str]:
    return list(config["ensembles"][wildcards.ensemble]["models"])


def ensemble_weights(wildcards):
    return config["ensembles"][wildcards.ensemble].get("weights")


def ensemble_gpus(wildcards) -> int:
    """One GPU when any member trains on GPUs (all members run on one device), else none."""
    members = config["ensembles"][wildcards.ensemble]["models"]
    return min(1, max(int(model_cfg(m).get("gpus", 0)) for m in members))


def per_ensemble(*outputs) -> list[str]:
    """Each output pattern (a rule's ``{ensemble}`` output) for every configured ensemble."""
    return [path for output in outputs for path in expand(str.__str__(output), ensemble=ENSEMBLES)]


def per_model(*outputs) -> list[str]:
    """Each output pattern (a rule's ``{model}`` output) for every configured model; the
    patterns' flags (report(), directory()) stay with the rules that declare them."""
    return [path for output in outputs for path in expand(str.__str__(output), model=MODELS)]


def leaderboard_input(wildcards) -> dict:
    """Every model's and ensemble's val_metrics.json, the models' best.json, train.json (their
    parameter count) and the train jobs' benchmarks (their training time)."""
    return {
        "metrics": per_model(rules.evaluate.output.metrics),
        "best": per_model(rules.select.output.best),
        "train": per_model(rules.train.output.train),
        "train_benchmarks": per_model(rules.train.benchmark),
        "ensemble_metrics": per_ensemble(rules.ensemble_evaluate.output.metrics),
    }


def report_outputs() -> list[str]:
    """Every figure and table of the report stage (rule provenance asks for them all; the
    submission's only once the test images are there)."""
    submission = rules.submission_summary.output if TEST_RELEASED else []
    return (
        list(rules.data_samples.output)
        + per_model(*rules.training_curves.output, *rules.evaluation_plots.output, *submission)
        + list(rules.leaderboard.output)
    )


def provenance_input(wildcards) -> dict:
    """What the record describes: the data index, every model's markers, metrics and
    submission, every ensemble's metrics and submission, the later editions' deliverables
    (masks archives, solution folders, val zips when val has no masks) and the report's figures
    (their hashes are recorded too)."""
    inputs = {
        "validated": rules.validate.output.validation,
        "stats": rules.stats.output.stats,
        "train": per_model(rules.train.output.train),
        "best": per_model(rules.select.output.best),
        "metrics": per_model(rules.evaluate.output.metrics),
        "zips": per_model(rules.package.output.zip) if TEST_RELEASED else [],
        "checks": per_model(rules.package.output.check) if TEST_RELEASED else [],
        "ensemble_metrics": per_ensemble(rules.ensemble_evaluate.output.metrics),
        "ensemble_zips": per_ensemble(rules.ensemble_package.output.zip) if TEST_RELEASED else [],
        "ensemble_checks": per_ensemble(rules.ensemble_package.output.check) if TEST_RELEASED else [],
        "figures": report_outputs(),
        "deliverables": solution_outputs() + val_zips(),
        # their checks: the masks archive's, the solution's parity, the grading zip's
        "deliverable_checks": list(deliverable_checks().values()),
    }
    if is_generated_source():
        inputs["source"] = rules.source.output.manifest
    return inputs


def solution_input(wildcards) -> dict:
    """The solution job's inputs: the selected checkpoint's records, the val scores and the evaluate
    step's TTA masks (its run.py is checked against them), the template and the network file.
    A model that is not a CompactFaceNet stops the DAG here, in one line."""
    if wildcards.model not in SOLUTION_MODELS:
        raise WorkflowError(
            f"results/submission/{wildcards.model}_solution: model {wildcards.model} is not a "
            f"CompactFaceNet (its config's model.backbone.type is not CompactFaceBackbone); only "
            f"those have a solution folder (configured: {', '.join(SOLUTION_MODELS) or 'none'})"
        )
    of_model = {"model": wildcards.model}
    return {
        "best": str.__str__(rules.select.output.best).format(**of_model),
        "train": str.__str__(rules.train.output.train).format(**of_model),
        "metrics": str.__str__(rules.evaluate.output.metrics).format(**of_model),
        "val_pred": str.__str__(rules.evaluate.output.val_pred).format(**of_model),
        "validated": rules.validate.output.validation,
        "framing": rules.framing.output.framing,
        "template": str(REPO_ROOT / "src" / "faceparse" / "predict" / "solution_run.py"),
        "network": str(REPO_ROOT / "src" / "faceparse" / "networks" / "compact.py"),
    }


def solution_outputs() -> list[str]:
    """The later editions' deliverables of every CompactFaceNet model: the masks/ archive and the
    grading zip (once the test images are there) and the solution folder (none for other models)."""
    outputs = [rules.package_masks.output.zip, rules.grading.output.zip] if TEST_RELEASED else []
    return [
        path
        for output in (*outputs, rules.solution.output.solution)
        for path in expand(str.__str__(output), model=SOLUTION_MODELS)
    ]


def deliverable_check_names(wildcards) -> list[str]:
    """The ``{model}:{part}`` of each of provenance's ``deliverable_checks`` inputs, in order."""
    return list(deliverable_checks())


def deliverable_checks() -> dict[str, str]:
    """``{model}:{part}`` -> the check record of each later-editions deliverable that `all` makes:
    the masks archive's check, the solution's parity, the grading zip's check."""
    parts = {"solution": rules.solution.output.parity}
    if TEST_RELEASED:
        parts = {"masks": rules.package_masks.output.check, **parts, "grading": rules.grading.output.check}
    return {
        f"{model}:{part}": str.__str__(output).format(model=model)
        for model in SOLUTION_MODELS
        for part, output in parts.items()
    }


def val_zips() -> list[str]:
    """The development-phase submissions (val predicted and zipped like test) when val has no masks."""
    if VAL_HAS_MASKS:
        return []
    return per_model(rules.package_val.output.zip) + per_ensemble(rules.ensemble_package_val.output.zip)


def export_outputs() -> list[str]:
    """Each model's ONNX export and its parity record with PyTorch (rule export)."""
    return per_model(*rules.export.output)


def intermediate_outputs() -> list[str]:
    """What one step makes only for others (the source and flip manifests, train.json, the test and
    val masks). Snakemake deletes a failed job's outputs and then never remakes a missing
    intermediate output whose consumers look up to date: after a failed training, a rerun would say
    "Nothing to be done" over the previous config's best.json and metrics. Named by `all`, a missing
    one reruns its job and everything after it."""
    outputs = [rules.source.output.manifest] if is_generated_source() else []
    if config["flip"]:
        outputs.append(rules.flip.output.manifest)
    outputs += per_model(rules.train.output.train)
    if TEST_RELEASED:
        outputs += per_model(rules.predict.output.test_pred) + per_ensemble(rules.ensemble_predict.output.test_pred)
    if not VAL_HAS_MASKS:
        outputs += per_model(rules.predict_val.output.test_pred)
        outputs += per_ensemble(rules.ensemble_predict_val.output.test_pred)
    return outputs


def all_outputs() -> list[str]:
    """Everything a run makes, the target of `all`: the data, each model's results, the report, and
    every intermediate output (so that a failed job is rerun)."""
    outputs = [rules.validate.output.validation, rules.stats.output.stats, rules.framing.output.framing]
    outputs += intermediate_outputs()
    outputs += per_model(rules.select.output.best, rules.evaluate.output.metrics)
    outputs += per_ensemble(rules.ensemble_evaluate.output.metrics)
    if TEST_RELEASED:  # colour previews (val and test side by side) and the Codalab zips
        outputs += per_model(rules.colourise.output.done, rules.package.output.zip)
        outputs += per_ensemble(rules.ensemble_colourise.output.done, rules.ensemble_package.output.zip)
    outputs += export_outputs() + solution_outputs()
    outputs += val_zips()  # when val has no masks: the development-phase submission
    if VAL_HAS_MASKS and DEV_SPLIT:  # val is held out: the dev scores beside val's
        outputs += per_model(rules.evaluate_dev.output.metrics)
    return outputs + report_outputs() + [rules.provenance.output.provenance]
