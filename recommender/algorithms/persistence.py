"""Artifacts on disk: a JSON description plus one ``.npz`` of arrays; no pickled code.

An artifact directory holds ``model.json`` (kind, format version, configuration, a few
scalars) and ``arrays.npz`` (numeric arrays only, read back with ``allow_pickle=False``).
Writing the directory atomically (temp dir, fsync, rename) is the caller's job.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
DESCRIPTION_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"


@dataclass(frozen=True, eq=False)
class Artifact:
    kind: str
    config: dict[str, Any]
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


def write_artifact(
    directory: str | Path,
    *,
    kind: str,
    config: dict[str, Any],
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any] | None = None,
) -> None:
    """Write an artifact into ``directory`` (created if missing, files overwritten)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        if np.asarray(array).dtype.hasobject:
            raise TypeError(f"array {name!r} holds Python objects; only numeric/string arrays are stored")
    description = {"kind": kind, "format_version": FORMAT_VERSION, "config": config, "meta": meta or {}}
    (path / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2, sort_keys=True))
    stored: dict[str, Any] = dict(arrays)
    with open(path / ARRAYS_FILE, "wb") as file:
        np.savez(file, **stored)


def read_artifact(directory: str | Path) -> Artifact:
    """Read an artifact written by :func:`write_artifact`; arrays are loaded into memory."""
    path = Path(directory)
    description = json.loads((path / DESCRIPTION_FILE).read_text())
    if description.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported artifact format {description.get('format_version')!r} in {path}")
    with np.load(path / ARRAYS_FILE, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return Artifact(kind=description["kind"], config=description["config"], arrays=arrays, meta=description["meta"])
