"""Writing a bat store: workers write whole parts, one committer appends rows and moves the counters.

Parts can be written by many processes at once (each to its own uuid-named part); the commit is the only
step that must be serialized, and it is cheap (a few small rows per song and one metadata write).
"""

from __future__ import annotations

import fcntl
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bat.featurize import FeaturizedSong
from bat.store.layout import (
    ATTRS_KEY,
    BEAT_CHUNK,
    FAILURE_COLUMNS,
    FAILURES,
    PARTS,
    ROW_CHUNK,
    SCHEMA_VERSION,
    SONG_COLUMNS,
    SONGS,
    schema_attrs,
)
from bat.store.reader import StoreError, open_group, read_table


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local_path(path: str) -> Path:
    return Path(path[len("file://") :] if path.startswith("file://") else path)


def write_part(store_path: str, songs: list[FeaturizedSong]) -> list[dict]:
    """Write the songs' beats as one new part; returns their song rows (not yet committed)."""
    if not songs:
        return []
    import zarr

    group = zarr.open_group(store_path, mode="a")
    part = uuid.uuid4().hex[:16]
    offsets = np.cumsum([0] + [s.n_beats for s in songs])
    total = int(offsets[-1])
    arrays = {
        "features": np.concatenate([s.features for s in songs]),
        "descriptors": np.concatenate([s.descriptors for s in songs]),
        "beat_times": np.concatenate([s.beat_times for s in songs]),
        "downbeats": np.concatenate([s.downbeats for s in songs]),
    }
    for name, data in arrays.items():
        chunks = (BEAT_CHUNK, *data.shape[1:])
        shards = (max(BEAT_CHUNK, -(-total // BEAT_CHUNK) * BEAT_CHUNK), *data.shape[1:])
        array = group.create_array(f"{PARTS}/{part}/{name}", shape=data.shape, chunks=chunks, shards=shards, dtype=data.dtype)
        array[...] = data
    return [
        {
            "content_hash": s.content_hash,
            "source": s.source,
            "part": part,
            "offset": int(offsets[k]),
            "n_beats": s.n_beats,
            "n_bars": int(s.downbeats.sum()),
            "meter": s.meter,
            "meters": ",".join(s.meters),
            "beat_source": s.beat_source,
            "beat_confidence": float(s.beat_confidence),
            "grid_evidence": s.grid_evidence,
            "n_notes": s.n_notes,
            "duration": s.duration,
            "defaults": ",".join(s.defaults),
            "schema_version": SCHEMA_VERSION,
        }
        for k, s in enumerate(songs)
    ]


@dataclass
class CommitResult:
    songs_added: int
    duplicates_skipped: int
    failures_added: int
    beats_added: int


class StoreWriter:
    """The one committer of a store. Holds an exclusive lock on local stores while open."""

    def __init__(self, path: str):
        self.path = str(path)
        self._lock_handle = None
        if _is_local(self.path):
            _local_path(self.path).mkdir(parents=True, exist_ok=True)
            self._lock()
        import zarr

        self._group = zarr.open_group(self.path, mode="a")
        attrs = dict(self._group.attrs).get(ATTRS_KEY)
        if attrs is None:
            self._create()
            attrs = dict(self._group.attrs)[ATTRS_KEY]
        elif attrs.get("schema_version") != SCHEMA_VERSION:
            self.close()
            raise StoreError(
                f"{self.path}: store schema {attrs.get('schema_version')} differs from this bat's {SCHEMA_VERSION}; "
                "featurize into a new store (or remove this one)"
            )
        self.attrs = attrs
        songs = read_table(self._group, SONGS, {"content_hash": "str"}, attrs["n_songs"])
        failures = read_table(self._group, FAILURES, {"content_hash": "str"}, attrs["n_failures"])
        self.known_hashes: set[str] = set(songs["content_hash"])
        self.failed_hashes: set[str] = {h for h in failures["content_hash"] if h}

    def _lock(self) -> None:
        handle = open(_local_path(self.path) / ".bat-writer.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            handle.close()
            raise StoreError(f"{self.path}: another bat run is writing to this store; wait for it to finish") from error
        self._lock_handle = handle

    def _create(self) -> None:
        for table, columns in ((SONGS, SONG_COLUMNS), (FAILURES, FAILURE_COLUMNS)):
            for column, kind in columns.items():
                self._group.create_array(
                    f"{table}/{column}", shape=(0,), chunks=(ROW_CHUNK,), dtype=str if kind == "str" else kind
                )
        self._group.attrs.update({ATTRS_KEY: schema_attrs()})

    def _append(self, table: str, columns: dict[str, str], start: int, rows: list[dict]) -> None:
        for column, kind in columns.items():
            array = self._group[f"{table}/{column}"]
            end = start + len(rows)
            if array.shape[0] < end:
                array.resize((max(end, 2 * array.shape[0], ROW_CHUNK),))
            values = [row[column] for row in rows]
            array[start:end] = np.array(values, dtype=str) if kind == "str" else np.array(values, dtype=kind)

    def commit(self, songs: list[dict], failures: list[dict]) -> CommitResult:
        """Append song rows (skipping content already in the store) and failure rows, then publish them."""
        fresh, seen = [], set()
        for row in songs:
            if row["content_hash"] in self.known_hashes or row["content_hash"] in seen:
                continue
            seen.add(row["content_hash"])
            fresh.append(row)
        n_songs, n_failures = self.attrs["n_songs"], self.attrs["n_failures"]
        if fresh:
            self._append(SONGS, SONG_COLUMNS, n_songs, fresh)
        if failures:
            failures = [{column: str(row.get(column) or "") for column in FAILURE_COLUMNS} for row in failures]
            self._append(FAILURES, FAILURE_COLUMNS, n_failures, failures)
        if fresh or failures:
            self.attrs = {**self.attrs, "n_songs": n_songs + len(fresh), "n_failures": n_failures + len(failures)}
            self._group.attrs.update({ATTRS_KEY: self.attrs})  # the commit point: one atomic metadata write
        self.known_hashes |= seen
        self.failed_hashes |= {row["content_hash"] for row in failures if row["content_hash"]}
        return CommitResult(len(fresh), len(songs) - len(fresh), len(failures), sum(r["n_beats"] for r in fresh))

    def vacuum(self) -> int:
        """Delete parts no committed song points to (left by killed runs); returns how many."""
        songs = read_table(self._group, SONGS, {"part": "str"}, self.attrs["n_songs"])
        referenced = set(songs["part"])
        if PARTS not in self._group:
            return 0
        parts = self._group[PARTS]
        orphans = [name for name in parts.group_keys() if name not in referenced]
        for name in orphans:
            del parts[name]
        if _is_local(self.path):  # a part killed while being created may lack its metadata: not a group yet
            folder = _local_path(self.path) / PARTS
            leftovers = [p for p in folder.iterdir() if p.is_dir() and p.name not in referenced] if folder.exists() else []
            for path in leftovers:
                shutil.rmtree(path, ignore_errors=True)
            orphans += [p.name for p in leftovers if p.name not in orphans]
        return len(orphans)

    def close(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
