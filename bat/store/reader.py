"""Reading a bat store: the songs table, the failures table, and random access to any song's beats."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from bat.store.layout import ATTRS_KEY, FAILURE_COLUMNS, FAILURES, PART_ARRAYS, PARTS, SONG_COLUMNS, SONGS


class StoreError(Exception):
    """The path is not a bat store, or one written with an incompatible layout."""


@dataclass(frozen=True)
class SongArrays:
    features: np.ndarray  # (n_beats, n_features) bool
    descriptors: np.ndarray  # (n_beats, n_descriptors) int64
    beat_times: np.ndarray  # (n_beats,) float64
    downbeats: np.ndarray  # (n_beats,) bool


def open_group(path: str, mode: str):
    import zarr

    try:
        return zarr.open_group(path, mode=mode)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as error:
        raise StoreError(f"{path}: no bat store here ({error}); create one with `bat featurize ... --store {path}`") from error


def read_table(group, name: str, columns: dict[str, str], n_rows: int) -> pd.DataFrame:
    if n_rows == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object if kind == "str" else kind) for c, kind in columns.items()})
    data = {}
    for column, kind in columns.items():
        values = group[f"{name}/{column}"][:n_rows]
        data[column] = values.astype(object) if kind == "str" else values
    return pd.DataFrame(data)


class BatStore:
    """A read view of a store as of its last commit; ``refresh()`` picks up later commits."""

    def __init__(self, path: str):
        self.path = str(path)
        self._group = open_group(self.path, mode="r")
        self.refresh()

    def refresh(self) -> None:
        attrs = dict(self._group.attrs).get(ATTRS_KEY)
        if not attrs:
            raise StoreError(f"{self.path}: a Zarr group but not a bat store (no '{ATTRS_KEY}' attributes)")
        self.attrs = attrs
        self.songs = read_table(self._group, SONGS, SONG_COLUMNS, attrs["n_songs"])
        self.failures = read_table(self._group, FAILURES, FAILURE_COLUMNS, attrs["n_failures"])
        self._part_array.cache_clear()

    @property
    def feature_names(self) -> list[str]:
        return list(self.attrs["feature_names"])

    @property
    def descriptor_names(self) -> list[str]:
        return list(self.attrs["descriptor_names"])

    @property
    def schema_version(self) -> str:
        return str(self.attrs["schema_version"])

    @property
    def n_beats(self) -> int:
        return int(self.songs["n_beats"].sum()) if len(self.songs) else 0

    def __len__(self) -> int:
        return len(self.songs)

    @lru_cache(maxsize=256)
    def _part_array(self, part: str, name: str):
        return self._group[f"{PARTS}/{part}/{name}"]

    def song_arrays(self, i: int) -> SongArrays:
        row = self.songs.iloc[int(i)]
        lo, hi = int(row["offset"]), int(row["offset"]) + int(row["n_beats"])
        arrays = {name: self._part_array(str(row["part"]), name)[lo:hi] for name in PART_ARRAYS}
        return SongArrays(**arrays)

    def summary(self) -> dict:
        by_category = self.failures["category"].value_counts().to_dict() if len(self.failures) else {}
        return {
            "path": self.path,
            "schema_version": self.schema_version,
            "layout_version": self.attrs["layout_version"],
            "songs": len(self.songs),
            "beats": self.n_beats,
            "features": len(self.feature_names),
            "descriptors": len(self.descriptor_names),
            "failures": int(len(self.failures)),
            "failures_by_category": {str(k): int(v) for k, v in by_category.items()},
            "meters": {str(k): int(v) for k, v in self.songs["meter"].value_counts().head(10).items()}
            if len(self.songs)
            else {},
        }


def open_store(path: str) -> BatStore:
    return BatStore(path)
