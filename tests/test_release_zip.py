"""The course's dataset zips: unpacked once into the mini layout, hostile zips refused before anything is written."""

from __future__ import annotations

import shutil
import time
import warnings
import zipfile
from pathlib import Path

import pytest

from faceparse.data.layouts import has_masks, layout_of
from faceparse.data.release_zip import (
    RECORD,
    Limits,
    ReleaseZipError,
    is_zip_source,
    plan_release,
    unpack_release,
    zip_paths,
)

DATE = (2024, 5, 17, 12, 30, 0)
TRAIN = {
    "train/images/a.jpg": b"jpeg a",
    "train/images/b.jpg": b"jpeg bb",
    "train/masks/a.png": b"png a",
    "train/masks/b.png": b"png bb",
}
VAL_IMAGES = {"val/images/c.jpg": b"jpeg ccc"}
VAL_MASKS = {"val/masks/c.png": b"png ccc"}
TEST = {"test/images/d.jpg": b"jpeg dddd", "test/images/e.jpg": b"jpeg eeeee"}


def _info(name: str, date_time=DATE, compress_type=zipfile.ZIP_STORED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time)
    info.compress_type = compress_type
    return info


def _zip(path: Path, entries, compress_type=zipfile.ZIP_STORED) -> Path:
    """A zip of (name, data) pairs or a dict; a name ending in / is a folder entry."""
    items = entries.items() if isinstance(entries, dict) else entries
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in items:
            zf.writestr(_info(name, compress_type=compress_type), data)
    return path


def _files(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under root: relative path -> (size, mtime_ns, content)."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _temps(parent: Path) -> list[Path]:
    return sorted(parent.glob(".release-*"))


def _course_zip(tmp_path: Path, top: str | None, val_masks: bool = True, name: str = "dev-public.zip") -> Path:
    prefix = f"{top}/" if top else ""
    entries = [(prefix, b"")] if top else []
    entries += [(f"{prefix}{split}/", b"") for split in ("train", "val")]
    data = {**TRAIN, **VAL_IMAGES, **(VAL_MASKS if val_masks else {})}
    entries += [(prefix + rel, content) for rel, content in data.items()]
    entries += [
        (f"__MACOSX/{prefix}._a.jpg", b"appledouble"),
        (f"__MACOSX/{prefix}train/images/._a.jpg", b"appledouble"),
        (".DS_Store", b"finder"),
        (f"{prefix}train/images/._b.jpg", b"appledouble"),
        (f"{prefix}train/Thumbs.db", b"windows"),
    ]
    return _zip(tmp_path / name, entries)


@pytest.mark.parametrize("top", ["dev-public", None])
def test_course_zip(tmp_path, top):
    zip_path = _course_zip(tmp_path, top)
    dest = tmp_path / "work" / "data"
    record = unpack_release([str(zip_path)], dest)
    assert record["extracted"] is True
    assert record["files"] == 6
    assert record["zips"] == [str(zip_path)]
    files = _files(dest)
    assert set(files) == {*TRAIN, *VAL_IMAGES, *VAL_MASKS, RECORD}
    for rel, content in {**TRAIN, **VAL_IMAGES, **VAL_MASKS}.items():
        assert files[rel][2] == content
        assert (dest / rel).stat().st_mtime == time.mktime((*DATE, 0, 0, -1))
    prefix = f"{top}/" if top else ""
    junk = [
        f"__MACOSX/{prefix}._a.jpg",
        f"__MACOSX/{prefix}train/images/._a.jpg",
        ".DS_Store",
        f"{prefix}train/images/._b.jpg",
        f"{prefix}train/Thumbs.db",
    ]
    assert record["skipped"] == [f"{zip_path}: {name} (junk)" for name in junk]
    assert layout_of(dest) == "challenge" and has_masks(dest, "val")
    assert _temps(dest.parent) == []


def test_other_files_are_skipped_and_listed(tmp_path):
    zip_path = _zip(
        tmp_path / "dev-public.zip",
        [
            ("dev-public/README.txt", b"read me"),
            ("dev-public/train/images/a.jpg", b"a"),
            ("dev-public/train/images/sub/deep.jpg", b"deep"),
            ("dev-public/train/labels/a.png", b"a"),
            ("dev-public/train/images/a.jpg.txt", b"kept: any file name"),
        ],
    )
    plan = plan_release([zip_path])
    assert [rel for _, _, rel in plan.files] == ["train/images/a.jpg", "train/images/a.jpg.txt"]
    assert plan.skipped == [
        f"{zip_path}: dev-public/{name} (not part of the layout)"
        for name in ("README.txt", "train/images/sub/deep.jpg", "train/labels/a.png")
    ]
    assert plan.total_bytes == 1 + len(b"kept: any file name")


def test_the_top_folder_is_found_beside_other_files_and_two_are_refused(tmp_path):
    zip_path = _zip(
        tmp_path / "x.zip",
        {
            "README.txt": b"the course's notes",
            "dev-public/train/images/a.jpg": b"a",
            "dev-public/train/masks/a.png": b"a",
        },
    )
    plan = plan_release([zip_path])
    assert [rel for _, _, rel in plan.files] == ["train/images/a.jpg", "train/masks/a.png"]
    assert plan.skipped == [f"{zip_path}: README.txt (not part of the layout)"]
    two = _zip(tmp_path / "two.zip", {"a/train/images/a.jpg": b"a", "b/train/images/b.jpg": b"b"})
    with pytest.raises(ReleaseZipError, match="under more than one top folder: a, b"):
        plan_release([two])


def test_top_folder_named_like_a_split_is_not_stripped(tmp_path):
    zip_path = _zip(tmp_path / "x.zip", {"train/images/a.jpg": b"a", "train/masks/a.png": b"a"})
    assert [rel for _, _, rel in plan_release([zip_path]).files] == ["train/images/a.jpg", "train/masks/a.png"]


def test_val_without_masks_then_test_zip(tmp_path):
    dev = _course_zip(tmp_path, "dev-public", val_masks=False)
    dest = tmp_path / "data"
    record = unpack_release([dev], dest)
    assert record["extracted"] and record["files"] == 5
    assert not has_masks(dest, "val") and (dest / "val" / "images" / "c.jpg").is_file()
    before = _files(dest)

    # the same zips again: nothing done, nothing touched
    again = unpack_release([dev], dest)
    assert again["extracted"] is False
    assert again["fingerprint"] == record["fingerprint"]
    assert _files(dest) == before

    # a week before the deadline: the test zip joins the list
    test_zip = _zip(tmp_path / "test-public.zip", {f"test-public/{rel}": data for rel, data in TEST.items()})
    merged = unpack_release([dev, test_zip], dest)
    assert merged["extracted"] is True and merged["files"] == 7
    assert merged["fingerprint"] != record["fingerprint"]
    after = _files(dest)
    assert {rel: after[rel] for rel in before if rel != RECORD} == {
        rel: v for rel, v in before.items() if rel != RECORD
    }
    assert {rel: after[rel][2] for rel in TEST} == TEST
    assert _temps(tmp_path) == []
    assert unpack_release([dev, test_zip], dest)["extracted"] is False


def test_fingerprint_follows_content_not_mtime_of_the_zip(tmp_path):
    a = _course_zip(tmp_path, "dev-public")
    first = plan_release([a]).fingerprint
    a.touch()
    assert plan_release([a]).fingerprint == first
    (tmp_path / "other").mkdir()
    b = _course_zip(tmp_path / "other", "dev-public", val_masks=False)
    assert plan_release([b]).fingerprint != first


def test_is_zip_source():
    assert is_zip_source("data/dev-public.zip") and is_zip_source("DEV.ZIP")
    assert is_zip_source(["a.zip", "b.Zip"])
    assert not is_zip_source("data/mini") and not is_zip_source([]) and not is_zip_source(["a.zip", "data"])
    assert not is_zip_source(None) and not is_zip_source({"a.zip": 1})
    assert zip_paths("a.zip") == [Path("a.zip")]
    assert zip_paths(["a.zip", "b.zip"]) == [Path("a.zip"), Path("b.zip")]
    with pytest.raises(ValueError):
        zip_paths("data/mini")


# -- hostile zips --------------------------------------------------------------------------------


def _good(tmp_path: Path, extra=(), name: str = "bad.zip") -> Path:
    """A good course zip with extra (name, data) entries after the good ones."""
    return _zip(tmp_path / name, [*TRAIN.items(), *extra])


def _traversal(name):
    return lambda tmp_path: ([_good(tmp_path, [(name, b"evil")])], name, None)


def _symlink(tmp_path):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in TRAIN.items():
            zf.writestr(_info(rel), data)
        info = _info("train/images/link.jpg")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    return [path], "train/images/link.jpg", None


def _duplicate(tmp_path):
    path = tmp_path / "bad.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        _zip(path, [*TRAIN.items(), ("train/images/a.jpg", b"other a")])
    return [path], "train/images/a.jpg", None


def _same_dest_in_two_zips(tmp_path):
    first = _good(tmp_path, name="dev-public.zip")
    second = _zip(tmp_path / "test-public.zip", {"pub/test/images/d.jpg": b"d", "pub/train/masks/b.png": b"b again"})
    return [first, second], "pub/train/masks/b.png", None


def _bomb(tmp_path):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in TRAIN.items():
            zf.writestr(_info(rel), data)
        zf.writestr(_info("train/images/bomb.jpg", compress_type=zipfile.ZIP_DEFLATED), bytes(5 * 2**20))
    return [path], "train/images/bomb.jpg", None


def _too_large(tmp_path):
    return [_good(tmp_path)], "train/masks/b.png", Limits(max_total_bytes=20)  # 6 + 7 + 5 bytes, then 6


def _too_many(tmp_path):
    return [_good(tmp_path)], None, Limits(max_entries=3)


def _encrypted(tmp_path):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in TRAIN.items():
            zf.writestr(_info(rel), data)
        zf.writestr(_info("train/images/secret.jpg"), b"secret")
        zf.getinfo("train/images/secret.jpg").flag_bits |= 0x1  # written so into the central directory
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("train/images/secret.jpg").flag_bits & 0x1
    return [path], "train/images/secret.jpg", None


def _not_a_zip(tmp_path):
    path = tmp_path / "bad.zip"
    path.write_bytes(b"this is not a zip\n" * 10)
    return [path], None, None


def _missing(tmp_path):
    return [_good(tmp_path, name="dev-public.zip"), tmp_path / "missing.zip"], None, None


def _no_layout(tmp_path):
    return [_zip(tmp_path / "bad.zip", {"images/a.jpg": b"a", "masks/a.png": b"a"})], None, None


HOSTILE = {
    "dotdot": _traversal("../evil.jpg"),
    "absolute": _traversal("/abs.jpg"),
    "dotdot-inside": _traversal("train/images/../../x"),
    "drive": _traversal("C:/x.jpg"),
    "backslash": _traversal("train\\images\\x.jpg"),
    "dotdot-folder": _traversal("../"),
    "dotdot-in-junk": _traversal("__MACOSX/../../x"),
    "newline": _traversal("train/images/../\nx.jpg"),
    "symlink": _symlink,
    "duplicate": _duplicate,
    "same-dest-two-zips": _same_dest_in_two_zips,
    "bomb": _bomb,
    "too-large": _too_large,
    "too-many-entries": _too_many,
    "encrypted": _encrypted,
    "not-a-zip": _not_a_zip,
    "missing": _missing,
    "no-layout": _no_layout,
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_zip_refused_and_nothing_written(tmp_path, case):
    zips, entry, limits = HOSTILE[case](tmp_path)
    dest = tmp_path / "work" / "data"
    with pytest.raises(ReleaseZipError) as caught:
        unpack_release(zips, dest, **({"limits": limits} if limits else {}))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{zips[-1]}: ")
    if entry is not None:
        assert message.startswith(f"{zips[-1]}: {entry if entry.isprintable() else ascii(entry)}: ")
    if case == "no-layout":
        assert "expected train/images/" in message
    assert not dest.parent.exists()
    assert _temps(tmp_path) == []


def test_hostile_zip_leaves_existing_release_as_it_was(tmp_path):
    dev = _course_zip(tmp_path, "dev-public")
    dest = tmp_path / "data"
    unpack_release([dev], dest)
    before = _files(dest)
    zips, _, _ = _bomb(tmp_path)
    with pytest.raises(ReleaseZipError):
        unpack_release([dev, *zips], dest)
    assert _files(dest) == before
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("existing", [True, False])
def test_error_during_extraction_leaves_dest_as_it_was(tmp_path, monkeypatch, existing):
    dev = _course_zip(tmp_path, "dev-public")
    test_zip = _zip(tmp_path / "test-public.zip", TEST)
    dest = tmp_path / "data"
    if existing:
        unpack_release([dev], dest)
    before = _files(dest) if existing else None
    copy = shutil.copyfileobj
    calls = []

    def failing_copy(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return copy(*args, **kwargs)

    monkeypatch.setattr(shutil, "copyfileobj", failing_copy)
    with pytest.raises(OSError, match="No space left"):
        unpack_release([dev, test_zip], dest)
    assert len(calls) == 3
    assert (_files(dest) == before) if existing else not dest.exists()
    assert _temps(tmp_path) == []


def test_corrupt_entry_data_refused_during_extraction(tmp_path):
    """Damaged data passes the plan (central directory only) but fails zipfile's CRC check on extraction."""
    path = _zip(tmp_path / "dev-public.zip", TRAIN)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"png bb")
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    dest = tmp_path / "data"
    with pytest.raises(ReleaseZipError, match=r"dev-public\.zip: train/masks/b\.png: cannot extract it") as caught:
        unpack_release([path], dest)
    assert "\n" not in str(caught.value)
    assert not dest.exists() and _temps(tmp_path) == []


def test_not_enough_space(tmp_path, monkeypatch):
    dev = _course_zip(tmp_path, "dev-public")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=10))
    with pytest.raises(ReleaseZipError, match="bytes, 10 are free"):
        unpack_release([dev], tmp_path / "data")
    assert not (tmp_path / "data").exists() and _temps(tmp_path) == []
