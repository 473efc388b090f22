"""Shared fixtures.

``demo_corpus``: real MIDI files converted from music21's bundled scores (the "test" subset of
``bat.corpus.demo``, ~35 pieces, ~20 s on 2 cores), built once per session. Set ``BAT_TEST_CACHE`` to a folder to
keep them between sessions: the rebuild is then a no-op.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("bat") is None:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One torch thread: the test machines are small and shared, and tiny models gain nothing from more."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _scratch_tracking_store(tmp_path_factory):
    """MLflow runs and registered models of the tests go to a scratch SQLite store, never to mlflow/ in the
    checkout; tests that need their own store set MLFLOW_TRACKING_URI themselves."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "BAT_MLFLOW_TRACKING_URI")}
    os.environ.pop("BAT_MLFLOW_TRACKING_URI", None)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """Path of the manifest.csv of the "test" subset; its ``ok`` rows are real MIDI files.

    Read it with ``bat.corpus.manifest.read_manifest`` / ``manifest_midi_paths``. Treat the files as read-only:
    tests that damage a corpus work on a copy.
    """
    from bat.corpus.demo import build_demo_corpus
    from bat.corpus.manifest import read_manifest

    cache = os.environ.get("BAT_TEST_CACHE")
    folder = Path(cache) / "music21-test-corpus" if cache else tmp_path_factory.mktemp("music21-test-corpus")
    manifest = build_demo_corpus(folder, size="test")
    table = read_manifest(manifest)
    if (table["status"] != "ok").mean() > 0.1:  # a broken environment, not a few odd pieces
        failed = table.loc[table["status"] != "ok", ["source", "reason"]].head().to_string()
        pytest.fail(f"the demo corpus in {folder} mostly failed to convert:\n{failed}")
    return manifest


@pytest.fixture(scope="session")
def midi_dir(tmp_path_factory):
    """Real MIDI files for training tests: 14 multitrack songs of 8 to 16 bars (drums, bass, chords, melody)."""
    import random

    from tests.synthetic_corpus import song_midi

    folder = tmp_path_factory.mktemp("midi")
    for k in range(14):
        (folder / f"song{k:02d}.mid").write_bytes(song_midi(random.Random(100 + k), min_bars=8, max_bars=16))
    return folder


@pytest.fixture(scope="session")
def store_path(tmp_path_factory, midi_dir) -> str:
    """The 14 songs of ``midi_dir`` featurized into a store (treat as read-only)."""
    from bat.featurize import featurize_bytes
    from bat.store.writer import StoreWriter, write_part

    path = str(tmp_path_factory.mktemp("store") / "store.zarr")
    songs = [featurize_bytes(str(f), f.read_bytes()) for f in sorted(midi_dir.glob("*.mid"))]
    with StoreWriter(path) as writer:
        writer.commit(write_part(path, songs), [])
    return path
