"""Unpack the course's dataset zips (``dev-public.zip``, later a test zip) into one `mini` layout folder.

Participants get their data as zips, and the pipeline takes a list of them as its data root. They
are extracted once into ``{dest}/{split}/{images|masks}/{file}``, the layout that
:mod:`faceparse.data.layouts` reads.

The zips are untrusted input: a name may point outside the folder (``../x``, ``/x``, ``C:\\x``),
an entry may be a symlink, a few kilobytes may inflate to terabytes, a name may come twice. So:

- :func:`plan_release` reads the central directories only and refuses the whole release, with
  a one-line :class:`ReleaseZipError` naming the zip and the entry, on the first such problem,
  before anything is written. Files that are not data (macOS and Windows junk, a README) are
  skipped and listed, never written.
- :func:`unpack_release` extracts into a temporary folder next to the destination and moves it into
  place only once every entry is written and has passed zipfile's size and CRC checks: an error part
  way leaves the destination as it was. Files get their mtimes from the entries, so extracting the
  same zips again (say, after the test zip is added) gives the train and val files the same names,
  sizes and mtimes, and the fingerprints downstream rules take of the folders do not change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from faceparse.data.layouts import SPLITS

KINDS = ("images", "masks")
RECORD = ".release.json"
MiB = 1 << 20
GiB = 1 << 30
_SYMLINK = 0o120000
_FILE_TYPE = 0o170000
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_EXPECTED = "expected train/images/..., val/images/... or test/images/..., optionally under one top folder"


class ReleaseZipError(ValueError):
    """A zip that is refused; the message is one line: ``<zip>: <entry>: <problem>`` or ``<zip>: <problem>``."""


@dataclass(frozen=True)
class Limits:
    """What a release may hold, against zip bombs."""

    max_total_bytes: int = 64 * GiB  # uncompressed size of all the files extracted
    max_entries: int = 2_000_000  # entries of all the zips together, junk and folders included
    max_ratio: float = 200  # uncompressed / compressed size of one entry, checked above 1 MiB


ZIP_LIMITS = Limits()


@dataclass
class ReleasePlan:
    """What :func:`unpack_release` would write: ``files`` as (zip path, entry name, path relative to dest)."""

    files: list[tuple[Path, str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "zip: entry (reason)"
    fingerprint: str = ""
    total_bytes: int = 0


def is_zip_source(data_root) -> bool:
    """Whether a data root is a zip (a path ending in .zip) or a non-empty list of them."""
    if isinstance(data_root, str | os.PathLike):
        return os.fspath(data_root).lower().endswith(".zip")
    if isinstance(data_root, list | tuple):
        return bool(data_root) and all(
            isinstance(item, str | os.PathLike) and os.fspath(item).lower().endswith(".zip") for item in data_root
        )
    return False


def zip_paths(data_root) -> list[Path]:
    """The zip(s) of a data root for which :func:`is_zip_source` holds, as a list."""
    if not is_zip_source(data_root):
        raise ValueError(f"{data_root!r}: not a .zip path or a list of them")
    if isinstance(data_root, str | os.PathLike):
        return [Path(data_root)]
    return [Path(item) for item in data_root]


def _show(text: str) -> str:
    """``text``, escaped when it would break a one-line message (a hostile name may hold a newline)."""
    return text if text.isprintable() else ascii(text)


def _fail(zip_path, problem: str, entry: str | None = None) -> ReleaseZipError:
    where = _show(str(zip_path)) if entry is None else f"{_show(str(zip_path))}: {_show(entry)}"
    return ReleaseZipError(f"{where}: {problem}")


def _unsafe(name: str) -> str | None:
    """Why an entry name could write outside the destination, or None."""
    if "\\" in name:
        return "backslash in the name"
    if name.startswith("/") or (len(name) >= 2 and name[1] == ":" and name[0].isalpha()):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' in the path"
    return None


def _junk(name: str) -> bool:
    """macOS and Windows by-products: __MACOSX/, .DS_Store, AppleDouble ``._*`` files, Thumbs.db."""
    parts = name.split("/")
    base = parts[-1]
    return "__MACOSX" in parts or base.lower() in (".ds_store", "thumbs.db") or base.startswith("._")


def _digest_entry(digest, info: zipfile.ZipInfo) -> None:
    digest.update(
        b"%s\0%d\0%d\0%s\n" % (info.filename.encode(), info.CRC, info.file_size, str(info.date_time).encode())
    )


def _digest_zip(digest, zip_path: Path) -> None:
    digest.update(b"zip\0%s\n" % zip_path.name.encode())


def _entry_problem(info: zipfile.ZipInfo, limits: Limits) -> str | None:
    """Why one entry is refused (its name, type, encryption, compression), or None."""
    problem = _unsafe(info.filename)
    if problem:
        return problem
    if (info.external_attr >> 16) & _FILE_TYPE == _SYMLINK:
        return "symbolic link"
    if info.flag_bits & 0x1:
        return "encrypted"
    if info.is_dir():
        return None
    if info.compress_type not in _COMPRESSIONS:
        return f"unsupported compression method {info.compress_type}"
    if info.file_size > MiB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        return (
            f"compression ratio {info.file_size / max(info.compress_size, 1):.0f} above {limits.max_ratio:g} "
            f"({info.file_size} bytes from {info.compress_size}): a zip bomb?"
        )
    return None


def _read_infos(zip_path: Path) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(zip_path) as zf:
            return zf.infolist()
    except zipfile.BadZipFile as exc:
        raise _fail(zip_path, f"not a zip file ({exc})") from exc
    except OSError as exc:
        raise _fail(zip_path, f"cannot read it ({exc.strerror or exc})") from exc


def _layout_path(name: str) -> str | None:
    """``name`` if it is ``{split}/{kind}/{file}`` of the mini layout, else None."""
    parts = name.split("/")
    if len(parts) == 3 and parts[0] in SPLITS and parts[1] in KINDS and parts[2] not in ("", "."):
        return name
    return None


def _top_folder(zip_path: Path, files: Sequence[zipfile.ZipInfo]) -> str | None:
    """The one folder the layout sits under (``dev-public/`` of ``dev-public/train/images/a.jpg``),
    or None when it sits at the zip's top (or nowhere); files outside it are then skipped, not
    fatal (a README beside the folder). The layout under two top folders is refused."""
    if any(_layout_path(info.filename) for info in files):
        return None
    tops = sorted(
        {
            name.split("/", 1)[0]
            for name in (i.filename for i in files)
            if "/" in name and _layout_path(name.split("/", 1)[1])
        }
    )
    if len(tops) > 1:
        raise _fail(zip_path, f"the dataset layout under more than one top folder: {', '.join(tops)}")
    return tops[0] if tops else None


def plan_release(zips: Sequence[str | Path], limits: Limits = ZIP_LIMITS) -> ReleasePlan:
    """Check every entry of every zip (central directories only) and say which file goes where.

    Raises :class:`ReleaseZipError` on the first unsafe entry, duplicate, limit exceeded, zip that
    cannot be read, or zip with no file of the layout in it."""
    if not zips:
        raise ReleaseZipError("no zip given")
    plan = ReleasePlan()
    digest = hashlib.sha256()
    dests: dict[str, tuple[Path, str]] = {}
    entries = 0
    for zip_path in map(Path, zips):
        infos = _read_infos(zip_path)
        entries += len(infos)
        if entries > limits.max_entries:
            raise _fail(zip_path, f"more than {limits.max_entries} entries in the zips together")
        names: set[str] = set()
        files: list[zipfile.ZipInfo] = []
        for info in infos:
            problem = _entry_problem(info, limits)
            if problem:
                raise _fail(zip_path, problem, info.filename)
            if info.filename in names:
                raise _fail(zip_path, "name appears twice in the zip", info.filename)
            names.add(info.filename)
            if info.is_dir():
                continue
            if _junk(info.filename):
                plan.skipped.append(f"{zip_path}: {info.filename} (junk)")
            else:
                files.append(info)
        top = _top_folder(zip_path, files)
        _digest_zip(digest, zip_path)
        kept = 0
        for info in files:
            inside = top is None or info.filename.startswith(f"{top}/")
            rel = _layout_path(info.filename[len(top) + 1 :] if top else info.filename) if inside else None
            if rel is None:
                plan.skipped.append(f"{zip_path}: {info.filename} (not part of the layout)")
                continue
            if rel in dests:
                first_zip, first_entry = dests[rel]
                raise _fail(zip_path, f"{rel} also comes from {first_zip}: {first_entry}", info.filename)
            dests[rel] = (zip_path, info.filename)
            plan.total_bytes += info.file_size
            if plan.total_bytes > limits.max_total_bytes:
                raise _fail(
                    zip_path, f"files add up to more than {limits.max_total_bytes} bytes uncompressed", info.filename
                )
            plan.files.append((zip_path, info.filename, rel))
            _digest_entry(digest, info)
            kept += 1
        if not kept:
            raise _fail(zip_path, f"no file of the dataset layout: {_EXPECTED}")
    plan.fingerprint = digest.hexdigest()
    return plan


def _read_record(dest: Path) -> dict | None:
    try:
        record = json.loads((dest / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _mtime(date_time: tuple[int, ...]) -> float:
    """An entry's timestamp (local time, as zip stores it) in seconds since the epoch."""
    try:
        return time.mktime((*date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return time.mktime((1980, 1, 1, 0, 0, 0, 0, 0, -1))


def _extract(plan: ReleasePlan, folder: Path) -> None:
    """Write the plan's files under folder, checking that the zips still are what was planned."""
    digest = hashlib.sha256()
    by_zip: dict[Path, list[tuple[str, str]]] = {}
    for zip_path, entry, rel in plan.files:
        by_zip.setdefault(zip_path, []).append((entry, rel))
    for zip_path, files in by_zip.items():
        _digest_zip(digest, zip_path)
        with zipfile.ZipFile(zip_path) as zf:
            for entry, rel in files:
                info = zf.getinfo(entry)
                _digest_entry(digest, info)
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with zf.open(info) as src, open(target, "xb") as dst:
                        shutil.copyfileobj(src, dst, MiB)
                        written = dst.tell()
                except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
                    raise _fail(zip_path, f"cannot extract it ({exc})", entry) from exc
                if written != info.file_size:
                    raise _fail(zip_path, f"{written} bytes extracted, {info.file_size} declared", entry)
                mtime = _mtime(info.date_time)
                os.utime(target, (mtime, mtime))
    if digest.hexdigest() != plan.fingerprint:
        raise ReleaseZipError(f"{', '.join(str(z) for z in by_zip)}: the zips changed while being extracted")


def unpack_release(zips: Sequence[str | Path], dest: str | Path, limits: Limits = ZIP_LIMITS) -> dict:
    """Extract the zips into dest in the mini layout, unless dest already holds exactly them.

    Returns the record kept in ``dest/.release.json`` (fingerprint, zips, files, skipped) with
    ``extracted``: False when dest was left alone. A refused zip, or any error, leaves dest as it was."""
    plan = plan_release(zips, limits)
    dest = Path(dest)
    record = {
        "fingerprint": plan.fingerprint,
        "zips": [str(z) for z in zips],
        "files": len(plan.files),
        "total_bytes": plan.total_bytes,
        "skipped": plan.skipped,
    }
    old_record = _read_record(dest)
    if (
        old_record is not None
        and old_record.get("fingerprint") == record["fingerprint"]
        and old_record.get("zips") == record["zips"]
    ):
        return {**old_record, "extracted": False}
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if free < plan.total_bytes:
        raise ReleaseZipError(f"{dest}: the zips need {plan.total_bytes} bytes, {free} are free on {dest.parent}")
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".release-"))
    try:
        _extract(plan, tmp)
        (tmp / RECORD).write_text(json.dumps(record, indent=1) + "\n")
        old = None
        if dest.exists() or dest.is_symlink():
            old = dest.parent / f".release-old-{os.urandom(8).hex()}"
            os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except BaseException:
            if old is not None:
                os.rename(old, dest)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return {**record, "extracted": True}
