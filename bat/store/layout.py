"""The store's layout, written once: every reader and writer takes names and versions from here.

A bat store is one Zarr v3 group::

    zarr.json                      attrs["bat"]: layout version, schema version, feature and descriptor
                                   names, and the commit counters n_songs / n_failures
    parts/<part>/features          (beats, features) bool      -- one beat axis per part, songs back to back
    parts/<part>/descriptors       (beats, descriptors) int64
    parts/<part>/beat_times        (beats,) float64 seconds
    parts/<part>/downbeats         (beats,) bool
    songs/<column>                 one row per song (SONG_COLUMNS); a song is `n_beats` beats of part `part`
                                   from `offset`
    failures/<column>              one row per file that could not be featurized (FAILURE_COLUMNS)
    labels/<name>/<part>           reserved: per-beat label arrays (fine-tuning targets) aligned with parts

A part is what one worker featurized in one go, written whole by that worker (sharded: a few files per part
whatever its size, so 176k songs don't become millions of files). Only rows below the committed counters
exist for readers: the committer appends rows past them and then updates the counters in one atomic write
of the root metadata, so a reader never sees half a song and a killed run leaves the store valid.
"""

from __future__ import annotations

from bat.features.descriptors import DESCRIPTOR_NAMES
from bat.features.registry import FEATURE_NAMES, features_digest

LAYOUT_VERSION = 2  # 2: beat_confidence and grid_evidence song columns
SCHEMA_VERSION = f"{LAYOUT_VERSION}-{features_digest()}"

ATTRS_KEY = "bat"
PARTS = "parts"
SONGS = "songs"
FAILURES = "failures"
LABELS = "labels"

PART_ARRAYS = ("features", "descriptors", "beat_times", "downbeats")
BEAT_CHUNK = 4096  # beats per inner chunk: a 512-beat training window touches one or two chunks

# name -> numpy dtype kind ("str" for text)
SONG_COLUMNS: dict[str, str] = {
    "content_hash": "str",
    "source": "str",
    "part": "str",
    "offset": "int64",
    "n_beats": "int64",
    "n_bars": "int64",
    "meter": "str",
    "meters": "str",
    "beat_source": "str",
    "beat_confidence": "float64",
    "grid_evidence": "str",
    "n_notes": "int64",
    "duration": "float64",
    "defaults": "str",
    "schema_version": "str",
}
FAILURE_COLUMNS: dict[str, str] = {"source": "str", "content_hash": "str", "category": "str", "message": "str"}
ROW_CHUNK = 8192


def schema_attrs() -> dict:
    return {
        "layout_version": LAYOUT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "descriptor_names": list(DESCRIPTOR_NAMES),
        "n_songs": 0,
        "n_failures": 0,
    }
