"""The whole demo corpus (real scores from music21's bundled corpus): beats equal pretty_midi's, and it
featurizes end to end into a store that reads back."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from bat.beats import beat_grid
from bat.featurize import featurize_path
from bat.ingest import load_midi
from bat.ingest.sources import expand_inputs
from bat.run.local import run_local
from bat.store import open_store


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory) -> list[str]:
    from bat.corpus.demo import build_demo_corpus

    cache = os.environ.get("BAT_TEST_CACHE")
    folder = Path(cache) / "demo" if cache else tmp_path_factory.getbasetemp() / "demo"
    manifest = build_demo_corpus(folder, size="demo")
    return expand_inputs([str(manifest)])


def test_demo_corpus_is_varied(demo_files):
    assert len(demo_files) >= 150
    meters = {featurize_path(path).meter for path in demo_files[::5]}
    assert {"4/4", "3/4"} <= meters and len(meters) >= 3


def test_beats_equal_pretty_midi_on_every_demo_file(demo_files, monkeypatch):
    monkeypatch.setattr(pretty_midi.pretty_midi, "MAX_TICK", 1e10)  # music21 writes 10,080 ticks per quarter
    mismatches = []
    for path in demo_files:
        reference = pretty_midi.PrettyMIDI(path)
        grid = beat_grid(load_midi(path))
        beats, downbeats = reference.get_beats(), reference.get_downbeats()
        if beats.shape != grid.times.shape or np.abs(beats - grid.times).max() > 1e-3:
            mismatches.append((path, "beats", beats.shape, grid.times.shape))
        elif downbeats.shape != grid.times[grid.downbeats].shape or np.abs(downbeats - grid.times[grid.downbeats]).max() > 1e-3:
            mismatches.append((path, "downbeats"))
    assert not mismatches, mismatches[:5]


def test_demo_corpus_featurizes_into_a_store(demo_files, tmp_path):
    store_path = str(tmp_path / "demo.zarr")
    summary = run_local(demo_files, store_path, workers=2, partition_size=32)
    assert summary.featurized == len(set(demo_files)) - sum(summary.failed.values()) - summary.skipped
    store = open_store(store_path)
    assert len(store) == summary.featurized and store.n_beats == summary.beats > 0
    arrays = store.song_arrays(len(store) - 1)
    assert arrays.features.shape == (store.songs["n_beats"].iloc[-1], len(store.feature_names))
    assert open_store(store_path).songs["content_hash"].is_unique
    again = run_local(demo_files, store_path, workers=2, partition_size=32)
    assert again.featurized == 0 and not again.failed and again.skipped == again.files
