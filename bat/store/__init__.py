"""The Zarr store of featurized songs: see ``bat.store.layout`` for what is where."""

from bat.store.reader import BatStore, SongArrays, StoreError, open_store

__all__ = ["BatStore", "SongArrays", "StoreError", "open_store"]
