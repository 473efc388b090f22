"""The corpus manifest: one CSV row per piece attempted, the single source of truth for what a corpus holds.

Readers use ``read_manifest`` / ``manifest_midi_paths`` instead of globbing the folder: a ``.mid`` on disk
that is not an ``ok`` row (a leftover of a killed run, a file from another tool) is not part of the corpus.
The writer replaces the file atomically, so a run killed at any moment leaves the previous manifest intact.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

MANIFEST_NAME = "manifest.csv"

COLUMNS: tuple[str, ...] = (
    "path",  # the MIDI file, relative to the manifest's folder (posix separators)
    "collection",  # the music21 corpus folder: bach, essenFolksong, oneills1850...
    "composer",
    "title",
    "time_signature",  # meter of the first full bar ("3/4"), never the pickup's
    "key",  # music21 spelling, "G major", "B- minor": key.Key(*key.split()) round-trips
    "n_parts",
    "content_hash",  # sha256 hex of the MIDI bytes as written
    "status",  # "ok" or "failed"
    "reason",  # empty when ok; "timeout" or "<ExceptionClass>: <message>" when failed
    "source",  # music21 corpus path, "#<ABC reference number>" for a tune inside an opus file
    "n_bars",  # bars written (= measures of the score; repeats are not expanded)
    "pickup",  # length of the anacrusis in quarter notes, 0 when the piece starts on a downbeat
    "tempo_qpm",  # first metronome mark; 120 (music21's default, written into the file) when none is marked
    "ticks_per_quarter",  # the file's resolution: 480, or finer when tuplets need it
    "exact_timing",  # every onset, duration and bar line is exact in the file ("true"/"false"; read as booleans)
    "analysis",  # music21 corpus path of a Roman-numeral analysis (.rntxt) of this piece, if one is bundled
    "seconds",  # conversion time
)

STATUS_OK = "ok"
STATUS_FAILED = "failed"

_INT_COLUMNS = ("n_parts", "n_bars", "ticks_per_quarter")
_FLOAT_COLUMNS = ("pickup", "tempo_qpm", "seconds")


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """The manifest as a DataFrame with the columns of ``COLUMNS``; text cells are ``""`` when unknown, never NaN.

    ``path`` may be the CSV or the corpus folder holding it.
    """
    path = _manifest_file(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no corpus manifest here; build one with `bat corpus music21 --out DIR`")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a bat corpus manifest, columns {missing} are missing")
    for col in _INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["exact_timing"] = df["exact_timing"].map({"true": True, "false": False}).astype("boolean")
    return df[list(COLUMNS)]


def manifest_midi_paths(path: str | os.PathLike) -> list[Path]:
    """Absolute paths of the MIDI files of the ``ok`` rows, in manifest order."""
    path = _manifest_file(path)
    df = read_manifest(path)
    root = path.parent.resolve()
    return [root / p for p in df.loc[df["status"] == STATUS_OK, "path"]]


def load_rows(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """The manifest's rows keyed by ``source`` (empty when there is no manifest yet), all values as text."""
    path = _manifest_file(path)
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["source"]: row for row in csv.DictReader(f)}


def write_manifest(path: str | os.PathLike, rows: Iterable[Mapping[str, object]]) -> Path:
    """Write ``rows`` (sorted by path) to the manifest atomically: a temp file, fsync, then ``os.replace``."""
    path = _manifest_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    ordered = sorted(rows, key=lambda r: (str(r.get("path", "")), str(r.get("source", ""))))
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in ordered:
            writer.writerow({c: _cell(row.get(c)) for c in COLUMNS})
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def split_source(source: str) -> tuple[str, int | None]:
    """``"essenFolksong/ballad10.abc#12"`` -> ``("essenFolksong/ballad10.abc", 12)``; no ``#``: number None."""
    corpus_path, _, number = source.partition("#")
    return corpus_path, (int(number) if number else None)


def _manifest_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path / MANIFEST_NAME if path.is_dir() or not path.suffix else path


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
