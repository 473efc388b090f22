"""What ``bat featurize`` and the featurize-corpus flow accept as input, expanded to a list of files.

Inputs may be MIDI files, folders (searched recursively), glob patterns, or manifests (a ``manifest.csv``
written by ``bat corpus``, or a text file with one path per line).
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")


def is_midi(path: str) -> bool:
    return path.lower().endswith(MIDI_SUFFIXES)


def expand_inputs(inputs: Iterable[str], limit: int | None = None) -> list[str]:
    """Files named by ``inputs``, deduplicated, in a stable order (so partitions are reproducible)."""
    found: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(str(p) for p in path.rglob("*") if p.is_file() and is_midi(p.name))
        elif path.is_file() and path.suffix.lower() in (".csv", ".txt", ".lst"):
            found += _manifest_paths(path)
        elif path.is_file():
            found.append(str(path))
        elif any(ch in item for ch in "*?["):
            found += sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            raise FileNotFoundError(f"{item}: no such file, folder or pattern")
    unique = list(dict.fromkeys(found))
    return unique[:limit] if limit is not None else unique


def _manifest_paths(path: Path) -> list[str]:
    if path.suffix.lower() == ".csv":
        import pandas as pd

        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "path" not in table.columns:
            raise ValueError(f"{path}: a manifest needs a 'path' column")
        if "status" in table.columns:
            table = table[table["status"] == "ok"]
        return [str((path.parent / p).resolve()) for p in table["path"]]
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [str((path.parent / line).resolve()) for line in lines if line and not line.startswith("#")]
