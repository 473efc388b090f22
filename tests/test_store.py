"""The store: atomic commits, dedup by content, orphan parts from killed runs, random access reads."""

from __future__ import annotations

import numpy as np
import pytest

from bat.featurize import featurize_path
from bat.features.docs import DOC_PATH, render
from bat.store import StoreError, open_store
from bat.store.layout import SCHEMA_VERSION
from bat.store.writer import StoreWriter, write_part
from tests.midi_builder import N, Piece


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("songs")
    pieces = [Piece(notes=[N(48 + k, b, 1) for b in range(4 + k)]) for k in range(5)]
    return [featurize_path(p.write(folder / f"s{k}.mid")) for k, p in enumerate(pieces)]


def test_rows_are_invisible_until_committed_and_read_back_exactly(tmp_path, songs):
    path = str(tmp_path / "store.zarr")
    with StoreWriter(path) as writer:
        rows = write_part(path, songs[:3])
        assert len(open_store(path)) == 0  # a part without a commit is not there for readers
        result = writer.commit(rows, [{"source": "x.mid", "content_hash": "", "category": "parse", "message": "bad"}])
        assert (result.songs_added, result.failures_added, result.beats_added) == (3, 1, 4 + 5 + 6)
    store = open_store(path)
    assert len(store) == 3 and store.n_beats == 15 and store.schema_version == SCHEMA_VERSION
    for i, song in enumerate(songs[:3]):
        arrays = store.song_arrays(i)
        np.testing.assert_array_equal(arrays.features, song.features)
        np.testing.assert_array_equal(arrays.descriptors, song.descriptors)
        np.testing.assert_array_equal(arrays.beat_times, song.beat_times)
        np.testing.assert_array_equal(arrays.downbeats, song.downbeats)
    assert list(store.failures["category"]) == ["parse"]


def test_same_content_is_committed_once(tmp_path, songs):
    path = str(tmp_path / "store.zarr")
    with StoreWriter(path) as writer:
        writer.commit(write_part(path, songs[:2]), [])
        result = writer.commit(write_part(path, songs[1:4]), [])
        assert (result.songs_added, result.duplicates_skipped) == (2, 1)
    with StoreWriter(path) as writer:  # a new run knows what is there
        assert writer.commit(write_part(path, songs), []).songs_added == 1
    store = open_store(path)
    assert sorted(store.songs["content_hash"]) == sorted(s.content_hash for s in songs)


def test_killed_run_leaves_orphan_parts_that_vacuum_removes(tmp_path, songs):
    path = str(tmp_path / "store.zarr")
    with StoreWriter(path) as writer:
        writer.commit(write_part(path, songs[:2]), [])
        write_part(path, songs[2:])  # written, never committed: the run was killed here
    store = open_store(path)
    assert len(store) == 2 and store.song_arrays(1).features.shape == songs[1].features.shape
    half_written = tmp_path / "store.zarr" / "parts" / "deadbeefdeadbeef" / "features"
    half_written.mkdir(parents=True)  # killed while creating a part: no group metadata yet
    with StoreWriter(path) as writer:
        assert writer.vacuum() == 2
        assert not half_written.parent.exists()
        assert writer.commit(write_part(path, songs[2:]), []).songs_added == 3
    assert len(open_store(path)) == 5


def test_one_writer_at_a_time(tmp_path):
    path = str(tmp_path / "store.zarr")
    with StoreWriter(path):
        with pytest.raises(StoreError, match="another bat run"):
            StoreWriter(path)
    StoreWriter(path).close()  # released


def test_store_of_another_schema_is_refused(tmp_path):
    import zarr

    path = str(tmp_path / "store.zarr")
    StoreWriter(path).close()
    group = zarr.open_group(path, mode="a")
    group.attrs.update({"bat": {**dict(group.attrs)["bat"], "schema_version": "0-old"}})
    with pytest.raises(StoreError, match="schema 0-old"):
        StoreWriter(path)


def test_feature_docs_are_generated_from_the_registry():
    assert DOC_PATH.read_text() == render(), "docs/features.md is stale: run `bat features docs --write`"
