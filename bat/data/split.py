"""The song-level train/validation split: by content hash, so a song never crosses it, on every machine.

A song is in validation when sha1(content_hash) mod 10 == 0 (about 10%). Python's ``hash`` is salted per
process, so it is not used. The same MIDI under two names has one content hash and lands on one side.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pandas as pd

VAL_MODULUS = 10  # one song in VAL_MODULUS goes to validation


def _key(content_hash: str) -> int:
    return int.from_bytes(hashlib.sha1(content_hash.encode()).digest()[:8], "big")


def hash_bucket(content_hash: str, modulus: int = VAL_MODULUS) -> int:
    return _key(content_hash) % modulus


def is_validation(content_hash: str, modulus: int = VAL_MODULUS) -> bool:
    return hash_bucket(content_hash, modulus) == 0


def split_songs(songs: pd.DataFrame, modulus: int = VAL_MODULUS) -> tuple[np.ndarray, np.ndarray]:
    """(train song numbers, validation song numbers), both sorted.

    A store too small to put any song in validation by hash (fewer than ~10 songs) lends its song with the
    smallest hash value to validation, with a warning, so that a report is still possible.
    """
    if len(songs) < 2:
        raise ValueError(f"a train/validation split needs at least 2 songs, the store has {len(songs)}")
    keys = np.array([_key(h) for h in songs["content_hash"]], dtype=object)
    val = np.array([k % modulus == 0 for k in keys])
    if not val.any() or val.all():
        warnings.warn(f"{len(songs)} songs give no hash-based validation split; validating on one song", stacklevel=2)
        val = np.zeros(len(songs), bool)
        val[int(np.argmin(keys))] = True
    index = songs.index.to_numpy()
    return np.sort(index[~val]), np.sort(index[val])
