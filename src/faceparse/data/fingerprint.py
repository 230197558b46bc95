"""A cheap fingerprint of the files under a dataset's folders, for Snakemake to see changes.

A folder given to Snakemake as an input is judged by the folder's own mtime, which does not
change when a file inside it is replaced. The rules that read a dataset in place take this
fingerprint as a param instead: a hash of every file's relative path, size and mtime (symlinks
followed), computed from directory listings and stat calls, without reading any file. Adding,
removing, renaming or replacing a file changes it, and so reruns the step.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from faceparse.data.layouts import LayoutError, split_dirs


def tree_fingerprint(root: str | Path, paths: Iterable[str | Path]) -> str:
    """sha256 over (path relative to root, size, mtime_ns) of every file under ``paths``
    (folders walked recursively, symlinks followed, loops cut); a missing path counts as such."""
    root = Path(root)
    digest = hashlib.sha256()
    seen: set[tuple[int, int]] = set()
    for path in paths:
        path = Path(path)
        rel = os.fsencode(os.path.relpath(path, root))
        try:
            st = path.stat()
        except OSError:
            digest.update(b"missing\0" + rel + b"\n")
            continue
        if path.is_dir():
            _walk(path, rel, digest, seen)
        else:
            digest.update(b"%s\0%d\0%d\n" % (rel, st.st_size, st.st_mtime_ns))
    return digest.hexdigest()


def _walk(folder: Path, rel: bytes, digest, seen: set[tuple[int, int]]) -> None:
    st = folder.stat()
    if (st.st_dev, st.st_ino) in seen:  # a symlink back up the tree
        return
    seen.add((st.st_dev, st.st_ino))
    entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
    for entry in entries:
        name = rel + b"/" + os.fsencode(entry.name)
        try:
            if entry.is_dir():
                _walk(Path(entry.path), name, digest, seen)
                continue
            st = entry.stat()
        except OSError:  # a dangling symlink: validate names it
            digest.update(b"unreadable\0" + name + b"\n")
            continue
        digest.update(b"%s\0%d\0%d\n" % (name, st.st_size, st.st_mtime_ns))


def listing_fingerprint(root: str | Path) -> str:
    """The fingerprint of a `mini` dataset's image and mask folders (every split, both layouts);
    a constant when root is not a dataset (validate then says why)."""
    try:
        dirs = split_dirs(root)
    except LayoutError as exc:
        return hashlib.sha256(str(exc).encode()).hexdigest()
    folders = [d for s in dirs.values() for d in (s.image_dir, s.mask_dir) if d is not None]
    return tree_fingerprint(root, folders)
