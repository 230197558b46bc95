"""The dev split: train images held out from training to select the checkpoint on.

The challenge's later editions ship 100 val images; one of them without masks, so the val loop
cannot score a checkpoint. A dev split is then carved out of train (config ``dev_split``, on by
default when val has no masks): each train name is ranked by ``sha256(f"{seed}:{name}")`` and the
first ``round(fraction * n)`` (half up, at least 1) are dev. The same names, fraction and seed give
the same dev images whatever order the files are listed in.

validate (:func:`faceparse.data.validate.validate_dataset`) applies it once and records it in the
dataset index: ``splits.train`` lists the images trained on, ``splits.dev`` the held-out ones (in
train's folders), and ``dev_split`` the settings; every later step reads the index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

__all__ = ["DEFAULT", "MAX_FRACTION", "DevSplitError", "resolve_dev_split", "dev_count", "dev_names"]

# Used when val has no masks and the config sets no dev_split (one student's 90:10 split).
DEFAULT = {"fraction": 0.1, "seed": 0}
# More than half of train held out is a mistake, not a split.
MAX_FRACTION = 0.5


class DevSplitError(ValueError):
    """A dev split that cannot be made (a bad fraction, or one that leaves train empty)."""


def resolve_dev_split(requested: Mapping | None, val_has_masks: bool) -> dict | None:
    """The dev split to make: ``{"fraction", "seed", "reason"}``, or None (val selects).

    ``requested`` is the config's ``dev_split`` (None: not set). Without val masks the default
    (:data:`DEFAULT`) applies when none is requested."""
    if requested is None and val_has_masks:
        return None
    if requested is None:
        settings, reason = dict(DEFAULT), "val has no masks and dev_split is not set: the default"
    else:
        settings = {
            "fraction": requested.get("fraction", DEFAULT["fraction"]),
            "seed": requested.get("seed", DEFAULT["seed"]),
        }
        reason = "dev_split in the config" + ("" if val_has_masks else " (val has no masks)")
    fraction = settings["fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= MAX_FRACTION:
        raise DevSplitError(f"dev_split.fraction: {fraction!r} is not in (0, {MAX_FRACTION}]")
    if isinstance(settings["seed"], bool) or not isinstance(settings["seed"], int):
        raise DevSplitError(f"dev_split.seed: {settings['seed']!r} is not an integer")
    return {"fraction": float(fraction), "seed": int(settings["seed"]), "reason": reason}


def dev_count(n: int, fraction: float) -> int:
    """How many of ``n`` train images are dev: ``fraction * n`` rounded half up, at least 1; refused
    when no train image would be left."""
    k = max(1, int(fraction * n + 0.5))
    if k >= n:
        raise DevSplitError(
            f"dev_split: a dev split of fraction {fraction} takes {k} of the {n} train "
            "image(s) and leaves none to train on; add train images"
        )
    return k


def _rank(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode("utf-8", "surrogateescape")).hexdigest()


def dev_names(names: Iterable[str], fraction: float, seed: int) -> list[str]:
    """The dev images among the train ``names`` (sorted): the ``dev_count`` ones ranked first by
    their seeded hash. Independent of the names' order."""
    names = sorted(set(names))
    k = dev_count(len(names), fraction)
    return sorted(sorted(names, key=lambda n: (_rank(seed, n), n))[:k])
