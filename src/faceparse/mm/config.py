"""Resolve a model config file into the one mmengine ``Config`` a run trains, evaluates and predicts with.

:func:`build_config` fills the config's template datasets from the data index
(``validation.json``, ``flip.json``, ``stats.json``) and ``train_on_val``, applies
the model's checked ``overrides`` (:func:`faceparse.model_configs.load_config`),
splits the total batch over the processes, keeps a pinned checkpoint through
rotation and adapts a GPU recipe to the CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path

from faceparse.model_configs import keep_iters_problems, load_config
from faceparse.records import FLIP_SUFFIX, TENSORBOARD, read_index, read_json, resolve_index_path, selection_split


def write_split_list(path: Path, names: list[str]) -> str:
    """Write the image stems of a split, one a line (an mmseg ``ann_file``); keep an identical file."""
    text = "".join(f"{n}\n" for n in names)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return str(path.resolve())


def dataset_cfg(
    template: Mapping,
    image_dir: str,
    mask_dir: str | None,
    image_suffix: str,
    ann_file: str,
    pipeline: list | None = None,
) -> dict:
    """One FaceParseDataset entry from the config's template dataset and a split's folders."""
    ds = copy.deepcopy(dict(template))
    ds["data_root"] = ""
    ds["ann_file"] = ann_file
    ds["img_suffix"] = image_suffix
    ds["data_prefix"] = dict(img_path=image_dir, seg_map_path=mask_dir or "")
    if pipeline is not None:
        ds["pipeline"] = copy.deepcopy(pipeline)
    return ds


def _replace_type(node, old: str, new: str) -> None:
    """Replace ``type=old`` by ``type=new`` in every dict of a nested config."""
    if isinstance(node, dict):
        if node.get("type") == old:
            node["type"] = new
        for value in node.values():
            _replace_type(value, old, new)
    elif isinstance(node, list | tuple):
        for value in node:
            _replace_type(value, old, new)


def build_config(
    config_file: str | Path,
    validation: str | Path,
    stats: str | Path,
    flip: str | Path | None = None,
    train_on_val: bool = False,
    overrides: Mapping | None = None,
    work_dir: str | Path | None = None,
    gpus: int = 0,
    split_dir: str | Path | None = None,
    processes: int = 1,
    keep_iters: Iterable[int] = (),
):
    """The fully resolved mmseg config of a model.

    Args:
        config_file: the model's config (``configs/x.py``).
        validation: ``results/data/validation.json`` (the dataset index).
        stats: ``results/data/stats.json`` (mean/std, 0-255 RGB).
        flip: ``results/data/flip.json`` to train on the offline-flipped copies too.
        train_on_val: add the val split to the training set.
        overrides: ``{dotted.key: value}`` applied with ``Config.merge_from_dict``
            before the datasets are filled in (so ``train_dataloader.dataset.pipeline``
            can be overridden); a changed ``train_cfg.max_iters`` also moves the
            schedules (:func:`faceparse.model_configs.load_config`); mean/std from
            ``stats`` unless overridden.
        work_dir: the mmengine work_dir (``results/models/{model}/train``).
        gpus: 0 trains on the CPU: fp32 ``OptimWrapper`` instead of AMP, BN
            instead of SyncBN, gloo for multi-process runs.
        split_dir: where the split lists (``ann_file``) go; default ``{work_dir}/splits``.
        processes: training processes (one per GPU). The config's
            ``train_dataloader.batch_size`` (after overrides) is the total batch
            of the recipe; each process gets ``batch_size / processes``.
        keep_iters: checkpoint iterations that must survive ``max_keep_ckpts``
            (a pinned ``select_iter``): kept by ``PinnedCheckpointHook``.

    Returns:
        an ``mmengine.Config``; data paths in it are absolute.

    Raises:
        ValueError: naming ``config_file``, for an override the config cannot take
            (:func:`faceparse.model_configs.override_problems`), a total batch that
            does not divide over ``processes``, or a kept iteration that will never be saved.
    """
    overrides = dict(overrides or {})
    # Overrides first, so they can change the template datasets (pipelines,
    # batch size) that the split datasets below are made from.
    cfg = load_config(config_file, overrides)
    work_dir = Path(work_dir) if work_dir is not None else Path("work_dirs") / Path(config_file).stem
    cfg.work_dir = str(work_dir.resolve())
    _tensorboard_into_run(cfg, work_dir)
    _use_stats(cfg, read_json(stats), overrides)
    _fill_datasets(
        cfg,
        Path(validation),
        Path(flip) if flip is not None else None,
        train_on_val,
        Path(split_dir) if split_dir is not None else work_dir / "splits",
    )
    _split_batch(cfg, config_file, processes)
    if keep_iters:
        _keep_checkpoints(cfg, config_file, keep_iters)
    if gpus <= 0:
        _adapt_to_cpu(cfg)
    return cfg


def _tensorboard_into_run(cfg, work_dir: Path) -> None:
    """TensorBoard's event files in ``{work_dir}/tensorboard``, not in each (re)start's timestamped
    folder: a resumed run's curves continue in the same TensorBoard run."""
    for backend in (cfg.get("visualizer") or {}).get("vis_backends") or []:
        if backend.get("type") == "TensorboardVisBackend" and not backend.get("save_dir"):
            backend["save_dir"] = str((work_dir / TENSORBOARD).resolve())


def track_with_mlflow(
    cfg, tracking_uri: str, experiment: str, run_name: str, params: Mapping, artifact_location: str | None = None
) -> None:
    """Log the run to MLflow too (config ``tracking: mlflow``): a
    :class:`faceparse.mm.tracking.MLflowRunVisBackend` next to the TensorBoard backend, logging the
    config, ``params`` and the curves into the run ``run_name`` of ``experiment`` at ``tracking_uri``."""
    backend = dict(
        type="MLflowRunVisBackend",
        tracking_uri=tracking_uri,
        exp_name=experiment,
        run_name=run_name,
        params=dict(params),
        artifact_location=artifact_location,
    )
    cfg.visualizer.vis_backends = [*(cfg.visualizer.get("vis_backends") or []), backend]


def _use_stats(cfg, statistics: Mapping, overrides: Mapping) -> None:
    """The data preprocessor normalises with the dataset's mean/std, unless overridden."""
    for key in ("mean", "std"):
        if not any(k.startswith(f"model.data_preprocessor.{key}") for k in overrides):
            cfg.model.data_preprocessor[key] = [float(v) for v in statistics[key]]


def _split_dataset(template: Mapping, entry: Mapping, record: Path, name: str, list_path: Path) -> dict:
    """A dataset of one index split (or the flip manifest); its folders resolved as the readers of
    ``record`` resolve them (:func:`faceparse.records.resolve_index_path`)."""
    if not entry.get("mask_dir"):
        raise ValueError(f"{record}: split {name!r} has no masks; cannot train or validate on it")
    ann = write_split_list(list_path, list(entry["names"]))
    image_dir, mask_dir = (str(resolve_index_path(entry[k], record).resolve()) for k in ("image_dir", "mask_dir"))
    return dataset_cfg(template, image_dir, mask_dir, entry.get("image_suffix", ".jpg"), ann)


def _fill_datasets(cfg, validation: Path, flip: Path | None, train_on_val: bool, split_dir: Path) -> None:
    """Train on train (+ the flipped copies, + val with ``train_on_val``); validate and test on the
    split that selects the checkpoint (dev when the index has one, else val)."""
    index = read_index(validation)
    splits = index["splits"]
    template = cfg.train_dataloader.dataset
    parts = [_split_dataset(template, splits["train"], validation, "train", split_dir / "train.txt")]
    if flip is not None:
        flipped = read_json(flip)
        leaked = sorted(set(flipped["names"]) & {n + FLIP_SUFFIX for n in splits.get("dev", {}).get("names", [])})
        if leaked:
            raise ValueError(
                f"{flip}: flipped copies of dev images ({', '.join(leaked[:5])}"
                f"{', ...' if len(leaked) > 5 else ''}) would be trained on; rerun flip"
            )
        parts.append(_split_dataset(template, flipped, flip, "flip", split_dir / "train_flip.txt"))
    if train_on_val:
        parts.append(_split_dataset(template, splits["val"], validation, "val", split_dir / "train_val.txt"))
    cfg.train_dataloader.dataset = parts[0] if len(parts) == 1 else dict(type="ConcatDataset", datasets=parts)
    select_on = selection_split(index)
    cfg.val_dataloader.dataset = _split_dataset(
        cfg.val_dataloader.dataset, splits[select_on], validation, select_on, split_dir / f"{select_on}.txt"
    )
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        if loader.get("num_workers", 0) == 0:
            loader["persistent_workers"] = False  # torch refuses persistent workers without workers


def _split_batch(cfg, config_file: str | Path, processes: int) -> None:
    """The config's batch size is the recipe's total: each of ``processes`` gets its share."""
    if processes <= 1:
        return
    total = int(cfg.train_dataloader.batch_size)
    if total % processes:
        raise ValueError(
            f"{config_file}: train_dataloader.batch_size={total} is the recipe's total batch and does not "
            f"split over {processes} GPUs; override train_dataloader.batch_size with a multiple of "
            f"{processes} (the new total batch) or change the model's gpus"
        )
    cfg.train_dataloader.batch_size = total // processes


def _adapt_to_cpu(cfg) -> None:
    """A GPU recipe on the CPU: fp32 instead of AMP, BN instead of SyncBN, gloo, no cudnn."""
    if cfg.optim_wrapper.get("type") == "AmpOptimWrapper":
        cfg.optim_wrapper.type = "OptimWrapper"
        cfg.optim_wrapper.pop("loss_scale", None)
        cfg.optim_wrapper.pop("dtype", None)
    _replace_type(cfg.model, "SyncBN", "BN")
    cfg.env_cfg.setdefault("dist_cfg", {})["backend"] = "gloo"
    cfg.env_cfg.cudnn_benchmark = False


def _keep_checkpoints(cfg, config_file: str | Path, keep_iters: Iterable[int]) -> None:
    """Make the checkpoint hook keep ``keep_iters`` through rotation; refuse iterations never saved."""
    problems = keep_iters_problems(cfg, keep_iters)
    if problems:
        raise ValueError(f"{config_file}: " + "; ".join(problems))
    hook = cfg.default_hooks.checkpoint
    hook.type = "PinnedCheckpointHook"
    hook.keep_iters = sorted(int(i) for i in keep_iters)
