"""The `source` step: write a generated dataset (synthetic or converted CelebAMask-HQ) in the
mini layout under out_dir, plus a manifest saying what produced it."""

from __future__ import annotations

from pathlib import Path

from faceparse.data.celebamask import convert_celebamask
from faceparse.data.synthetic import generate_dataset
from faceparse.records import write_json


def make_source(
    layout: str,
    out_dir: str | Path,
    manifest: str | Path,
    threads: int = 1,
    *,
    synthetic: dict | None = None,
    data_root: str | None = None,
    max_images: int | None = None,
    size: int = 512,
) -> dict:
    """Make the dataset for `layout` ('synthetic' or 'celebamask-hq') and write the manifest.

    ``synthetic`` is the config's ``synthetic`` section ({seed, size, counts}; the schema fills
    its defaults); ``data_root``, ``max_images`` and ``size`` are for the CelebAMask-HQ release."""
    if layout == "synthetic":
        seed, size = int(synthetic["seed"]), int(synthetic["size"])
        info = {
            "splits": generate_dataset(out_dir, synthetic["counts"], size=size, seed=seed, threads=threads),
            "seed": seed,
        }
    elif layout == "celebamask-hq":
        info = convert_celebamask(data_root, out_dir, size=size, max_images=max_images, threads=threads)
        info.update(data_root=str(data_root), max_images=max_images)
    else:
        raise ValueError(f"data_layout={layout!r} is not generated (mini data is used in place)")
    result = {"layout": layout, "root": str(out_dir), "size": size, **info}
    write_json(manifest, result)
    return result
