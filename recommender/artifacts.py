"""Trained artifacts on disk: ``ARTIFACT_DIR/<shop id>/<kind>/<version number>/``.

A version directory appears whole or not at all: it is written as a hidden temp
directory next to it (``.tmp-...``), every file and the directory are fsynced, a
``MANIFEST.json`` lists each file with its size and SHA-256, and the directory is
renamed into place (an atomic rename on one file system), then the parent is fsynced.
The version's checksum is the SHA-256 of the canonical manifest; it is recorded in the
database and checked before anything is loaded, so a corrupted or partial artifact
refuses to load. Deletion renames to a hidden ``.trash-...`` name first, so a
half-deleted directory is never visible under a version name either.

Temp and trash directories left by a killed worker, and version directories that were
renamed into place but never registered (a kill between rename and register), are
removed by :func:`artifacts_remove_unregistered`, which the run that holds the lease
for that shop and kind calls before it writes.
"""

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

MANIFEST_FILE = "MANIFEST.json"
TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
_CHUNK = 1 << 20


class ArtifactCorrupt(Exception):
    """The files on disk do not match the checksum recorded for the version."""


@dataclass(frozen=True)
class WrittenArtifact:
    relative_path: str  # relative to settings.ARTIFACT_DIR
    size_bytes: int
    sha256: str


def artifact_root() -> Path:
    return Path(settings.ARTIFACT_DIR)


def artifact_relative_path(shop_id: int, kind: str, number: int) -> str:
    return f"{int(shop_id)}/{kind}/{int(number)}"


def artifact_absolute_path(relative_path: str) -> Path:
    return artifact_root() / relative_path


def _kind_dir(shop_id: int, kind: str) -> Path:
    return artifact_root() / str(int(shop_id)) / kind


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest(directory: Path) -> dict[str, list[int | str]]:
    """{relative file path: [size, sha256]} of every file under ``directory`` except the manifest."""
    entries: dict[str, list[int | str]] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.relative_to(directory).as_posix() != MANIFEST_FILE:
            entries[path.relative_to(directory).as_posix()] = [path.stat().st_size, _file_sha256(path)]
    return entries


def _manifest_bytes(manifest: dict[str, list[int | str]]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def _remove(path: Path) -> None:
    """Remove a directory so that it never shows half-deleted under its own name."""
    trash = path.parent / f"{TRASH_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}"
    os.rename(path, trash)
    shutil.rmtree(trash)


def artifact_write(*, shop_id: int, kind: str, number: int, write: Callable[[Path], None]) -> WrittenArtifact:
    """Write version ``number`` of (shop, kind) atomically; ``write(directory)`` fills the files.

    Contract: the caller holds the training lease for (shop, kind) and ``number`` is not
    registered yet. A directory already at the target name is therefore an unregistered
    leftover of a killed attempt and is replaced.
    """
    parent = _kind_dir(shop_id, kind)
    parent.mkdir(parents=True, exist_ok=True)
    temp = parent / f"{TEMP_PREFIX}{number}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        write(temp)
        manifest = _manifest(temp)
        (temp / MANIFEST_FILE).write_bytes(_manifest_bytes(manifest))
        for path in temp.rglob("*"):
            if path.is_file():
                _fsync_file(path)
        for path in sorted((p for p in temp.rglob("*") if p.is_dir()), reverse=True):
            _fsync_dir(path)
        _fsync_dir(temp)
        final = parent / str(int(number))
        if final.exists():
            _remove(final)
        os.rename(temp, final)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    size = sum(int(entry[0]) for entry in manifest.values())
    return WrittenArtifact(
        relative_path=artifact_relative_path(shop_id, kind, number),
        size_bytes=size,
        sha256=hashlib.sha256(_manifest_bytes(manifest)).hexdigest(),
    )


def artifact_verify(relative_path: str, sha256: str) -> Path:
    """The artifact's directory, after checking every file against ``sha256``.

    Raises ArtifactCorrupt when the directory is missing, a file is missing, added,
    truncated or changed. Reads every byte: call it once per load, not per request.
    """
    directory = artifact_absolute_path(relative_path)
    if not directory.is_dir():
        raise ArtifactCorrupt(f"artifact {relative_path} is missing")
    actual = hashlib.sha256(_manifest_bytes(_manifest(directory))).hexdigest()
    if actual != sha256:
        raise ArtifactCorrupt(f"artifact {relative_path} does not match its checksum (expected {sha256}, got {actual})")
    return directory


def artifact_delete(relative_path: str) -> None:
    """Remove a version's directory (retention). Missing is fine: deletion may be repeated."""
    directory = artifact_absolute_path(relative_path)
    if directory.is_dir():
        _remove(directory)


def artifacts_remove_unregistered(*, shop_id: int, kind: str, registered: Collection[int]) -> list[str]:
    """Remove leftovers of killed attempts under (shop, kind): temp and trash directories
    and version directories whose number is not in ``registered``. Returns their names.

    Contract: only the holder of the training lease for (shop, kind) calls this; nobody
    else writes there, so everything unregistered is garbage.
    """
    parent = _kind_dir(shop_id, kind)
    if not parent.is_dir():
        return []
    removed: list[str] = []
    keep = {str(int(number)) for number in registered}
    for path in sorted(parent.iterdir()):
        name = path.name
        if name.startswith((TEMP_PREFIX, TRASH_PREFIX)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(name)
        elif path.is_dir() and name not in keep:
            _remove(path)
            removed.append(name)
    return removed
