"""The model side on real featurized stores: MIDI -> ``bat.featurize`` -> ``bat.store`` -> windows -> pair
features and a few pretraining steps. Lakh-like multitrack songs (tests/synthetic_corpus.py) and a hand-built
piece with known pairs always run; the music21 demo corpus runs as a slow test."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bat.data.dataset import StoreHandle, TrainWindows, collate
from bat.featurize import featurize_bytes, featurize_path
from bat.model.pairwise import DESCRIPTOR_NAMES, N_PAIR, PAIR_FEATURE_NAMES, pair_features
from bat.store import open_store
from bat.store.writer import StoreWriter, write_part
from bat.train import PretrainConfig, run_pretrain
from tests.midi_builder import N, Piece
from tests.model.test_pair_features import reference_pair_features
from tests.synthetic_corpus import song_midi


def _write_store(path, songs) -> str:
    path = str(path)
    with StoreWriter(path) as writer:
        writer.commit(write_part(path, songs), [])
    return path


@pytest.fixture(scope="module")
def lakh_like_store(tmp_path_factory) -> str:
    """12 multitrack songs of 8 to 20 bars (drums, bass, chords, melody), featurized into a store."""
    songs = [
        featurize_bytes(f"lakh-like/{k}.mid", song_midi(random.Random(k), min_bars=8, max_bars=20)) for k in range(12)
    ]
    return _write_store(tmp_path_factory.mktemp("lakh-like") / "store.zarr", songs)


def _agree_on_windows(store, songs, L: int = 64, seed: int = 0) -> int:
    """Vectorized == reference on one window per song, with masked beats; returns pair facts checked."""
    rng = np.random.default_rng(seed)
    handle, checked = StoreHandle(store), 0
    for s in songs:
        n = int(handle.store.songs["n_beats"].loc[s])
        start = int(rng.integers(0, max(1, n - L)))
        _, desc = handle.read(s, start, min(n, start + L))
        hidden = rng.random(len(desc)) < 0.15
        valid = np.ones(len(desc), bool)
        got = pair_features(*(torch.from_numpy(x)[None] for x in (desc, valid, hidden)))[0]
        want = reference_pair_features(desc, valid, hidden)
        bad = [PAIR_FEATURE_NAMES[f] for f in range(N_PAIR) if not np.array_equal(got[..., f].numpy(), want[..., f])]
        assert not bad, f"song {s} beats {start}+: vectorized != reference for {bad}"
        checked += int(want.sum())
    return checked


def test_store_has_the_descriptors_the_model_reads(lakh_like_store):
    store = open_store(lakh_like_store)
    assert list(store.descriptor_names) == list(DESCRIPTOR_NAMES)


def test_vectorized_equals_reference_on_real_songs(lakh_like_store):
    assert _agree_on_windows(lakh_like_store, songs=[0, 3, 7]) > 0


def test_known_pairs_from_the_real_featurizer(tmp_path):
    # bar 0: C3 bass, E4 G4 chord, melody C5 D5 E5 F5; bar 1 = bar 0 one whole tone up; bars 2-3 repeat 0-1
    notes = []
    for bar, shift in enumerate((0, 2, 0, 2)):
        for k, mel in enumerate((72, 74, 76, 77)):
            b = bar * 4 + k
            notes += [N(48 + shift, b), N(64 + shift, b), N(67 + shift, b), N(mel + shift, b, program=73)]
    song = featurize_path(Piece(notes=notes).write(tmp_path / "tone-up.mid"))
    desc = torch.from_numpy(song.descriptors[:16])[None]
    p = pair_features(desc, torch.ones(1, 16, dtype=torch.bool))[0]

    def f(name, i, j):
        return bool(p[i, j, PAIR_FEATURE_NAMES.index(name)])

    for i in range(4):
        assert f("beat_tone_up", i, i + 4) and f("beat_tone_down", i + 4, i) and f("same_beat", i, i + 8)
        assert f("melody_shift_ic2", i, i + 4) and f("chord_shift_ic2", i, i + 4) and f("bass_ic2", i, i + 4)
    assert f("same_chord_next_4", 0, 8) and not f("same_chord_next_4", 0, 4) and f("bar_dist_+2", 0, 8)


def test_windows_read_from_a_store_path_in_worker_processes(lakh_like_store):
    torch.manual_seed(0)
    data = TrainWindows(StoreHandle(lakh_like_store), songs=range(4), max_len=32)
    batches = list(DataLoader(data, batch_size=3, collate_fn=collate, num_workers=2, multiprocessing_context="spawn"))
    assert sum(len(b["song"]) for b in batches) == len(data)
    assert all(b["bits"].shape[-1] == len(open_store(lakh_like_store).feature_names) for b in batches)


@pytest.mark.filterwarnings("ignore:.*no hash-based validation split")
def test_pretrain_runs_on_a_real_store(lakh_like_store, tmp_path):
    cfg = PretrainConfig(store=lakh_like_store, steps=3, batch_size=4, max_len=48, log_every=1)
    report = run_pretrain(cfg, tmp_path, compare_plain=False)
    assert report["model"]["auroc_macro"] is not None and report["baselines"]["plain_encoder"] is None
    groups = set(report["groups"]["model"])
    assert "other" not in groups and {"meter", "harmony"} <= groups  # groups come from the feature registry


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*no hash-based validation split")
def test_music21_demo_corpus_end_to_end(demo_corpus, tmp_path):
    from bat.corpus.manifest import manifest_midi_paths
    from bat.errors import BatError

    songs = []
    for path in manifest_midi_paths(demo_corpus)[::2]:
        try:
            songs.append(featurize_path(path))
        except BatError:
            continue
    path = _write_store(tmp_path / "demo.zarr", songs)
    assert _agree_on_windows(path, songs=range(0, len(songs), 3), L=48) > 0
    cfg = PretrainConfig(store=path, steps=2, batch_size=4, max_len=64)
    report = run_pretrain(cfg, tmp_path / "run", compare_plain=False)
    assert report["eval"]["n_val_songs"] >= 1
