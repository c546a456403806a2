"""Artifacts appear whole or not at all, and refuse to load when they differ from their checksum."""

import json
from pathlib import Path

import pytest

from recommender.artifacts import (
    MANIFEST_FILE,
    ArtifactCorrupt,
    artifact_delete,
    artifact_verify,
    artifact_write,
    artifacts_remove_unregistered,
)


def _write_two_files(directory: Path) -> None:
    (directory / "model").mkdir()
    (directory / "model" / "arrays.bin").write_bytes(b"\x00\x01" * 1000)
    (directory / "items.txt").write_text("1\n2\n3\n")


def test_an_artifact_is_written_under_its_version_with_a_manifest(artifact_dir):
    written = artifact_write(shop_id=4, kind="als", number=2, write=_write_two_files)

    directory = artifact_dir / "4" / "als" / "2"
    assert written.relative_path == "4/als/2"
    assert sorted(p.name for p in (artifact_dir / "4" / "als").iterdir()) == ["2"]
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    assert sorted(manifest) == ["items.txt", "model/arrays.bin"]
    assert manifest["model/arrays.bin"][0] == 2000
    assert written.size_bytes == 2006
    assert artifact_verify(written.relative_path, written.sha256) == directory


def test_nothing_is_visible_under_the_version_name_until_the_write_completed(artifact_dir):
    seen_during_write = []

    def write(directory: Path) -> None:
        _write_two_files(directory)
        seen_during_write.extend(sorted(p.name for p in directory.parent.iterdir()))

    artifact_write(shop_id=1, kind="trending", number=1, write=write)

    assert len(seen_during_write) == 1 and seen_during_write[0].startswith(".tmp-1-")
    assert sorted(p.name for p in (artifact_dir / "1" / "trending").iterdir()) == ["1"]


def test_a_failed_write_leaves_nothing_behind(artifact_dir):
    def write(directory: Path) -> None:
        _write_two_files(directory)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        artifact_write(shop_id=1, kind="als", number=1, write=write)

    assert list((artifact_dir / "1" / "als").iterdir()) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "model" / "arrays.bin").write_bytes(b"\x00\x02" * 1000),  # same size, other bytes
        lambda d: (d / "items.txt").write_text("1\n2\n"),  # truncated
        lambda d: (d / "items.txt").unlink(),  # missing
        lambda d: (d / "extra.npz").write_bytes(b"x"),  # added
    ],
    ids=["changed", "truncated", "missing", "added"],
)
def test_a_damaged_artifact_refuses_to_load(damage, artifact_dir):
    written = artifact_write(shop_id=1, kind="als", number=1, write=_write_two_files)
    damage(artifact_dir / written.relative_path)

    with pytest.raises(ArtifactCorrupt, match="does not match its checksum"):
        artifact_verify(written.relative_path, written.sha256)


def test_a_missing_artifact_refuses_to_load():
    with pytest.raises(ArtifactCorrupt, match="missing"):
        artifact_verify("1/als/9", "0" * 64)


def test_leftovers_of_killed_attempts_are_removed_and_registered_versions_kept(artifact_dir):
    artifact_write(shop_id=1, kind="als", number=1, write=_write_two_files)
    artifact_write(shop_id=1, kind="als", number=2, write=_write_two_files)  # renamed, never registered
    kind_dir = artifact_dir / "1" / "als"
    (kind_dir / ".tmp-3-deadbeef" / "model").mkdir(parents=True)  # killed while writing
    (kind_dir / ".trash-1-cafe").mkdir()  # killed while deleting

    removed = artifacts_remove_unregistered(shop_id=1, kind="als", registered=[1])

    assert sorted(removed) == [".tmp-3-deadbeef", ".trash-1-cafe", "2"]
    assert sorted(p.name for p in kind_dir.iterdir()) == ["1"]


def test_a_leftover_at_the_target_name_is_replaced(artifact_dir):
    artifact_write(shop_id=1, kind="als", number=1, write=lambda d: (d / "old.bin").write_bytes(b"old"))

    written = artifact_write(shop_id=1, kind="als", number=1, write=_write_two_files)

    assert sorted(p.name for p in (artifact_dir / "1" / "als" / "1").iterdir()) == [MANIFEST_FILE, "items.txt", "model"]
    artifact_verify(written.relative_path, written.sha256)


def test_delete_removes_the_directory_and_may_be_repeated(artifact_dir):
    written = artifact_write(shop_id=1, kind="als", number=1, write=_write_two_files)

    artifact_delete(written.relative_path)
    artifact_delete(written.relative_path)

    assert list((artifact_dir / "1" / "als").iterdir()) == []
