"""Windows over the store: every beat of a long song scored exactly once, crops and padding, descriptor
columns in the model's order, worker-safe store handles, rank sharding and the song split."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from bat.data.dataset import EvalWindows, StoreHandle, TrainWindows, collate, ResumableSampler, song_windows
from bat.data.split import hash_bucket, split_songs
from bat.data.synthetic import SyntheticStore
from bat.model.pairwise import DESCRIPTOR_NAMES


@pytest.mark.parametrize("n_beats", [1, 31, 32, 33, 100, 513, 1500, 4099])
@pytest.mark.parametrize("max_len,stride", [(32, None), (32, 7), (512, None), (64, 64)])
def test_windows_cover_every_beat_exactly_once(n_beats, max_len, stride):
    windows = song_windows(0, n_beats, max_len, stride)
    kept = np.zeros(n_beats, int)
    for w in windows:
        assert 0 <= w.start <= w.keep_start < w.keep_stop <= w.stop <= n_beats
        assert w.stop - w.start == min(max_len, n_beats)
        kept[w.keep_start : w.keep_stop] += 1
    assert (kept == 1).all()
    if n_beats > 2 * max_len:  # an inner beat is scored with context on both sides
        w = next(w for w in windows if w.keep_start <= n_beats // 2 < w.keep_stop)
        assert n_beats // 2 - w.start >= (max_len - (stride or max_len // 2)) // 2 - 1


def test_eval_windows_score_every_beat_of_every_song(small_store):
    data = EvalWindows(StoreHandle(small_store), songs=[0, 5, 7], max_len=32)
    seen = {s: np.zeros(int(small_store.songs.n_beats[s]), int) for s in (0, 5, 7)}
    for item in data:
        bits, _ = StoreHandle(small_store).read(item["song"], item["start"], item["start"] + len(item["bits"]))
        assert torch.equal(item["bits"], torch.from_numpy(bits))
        seen[item["song"]][item["start"] + np.flatnonzero(item["keep"].numpy())] += 1
    assert all((v == 1).all() for v in seen.values())


def test_train_crops_and_collate_padding(small_store):
    torch.manual_seed(0)
    data = TrainWindows(StoreHandle(small_store), songs=range(6), max_len=32)
    assert len(data) == sum(-(-int(n) // 32) for n in small_store.songs.n_beats[:6])
    items = [data[k] for k in range(len(data))]
    assert all(1 <= len(it["bits"]) <= 32 for it in items)
    short = SyntheticStore(3, seed=2, min_bars=3, max_bars=5)  # songs shorter than a window: padding
    batch = collate([TrainWindows(StoreHandle(short), [0, 1, 2], 32)[k] for k in range(3)])
    lengths = [int(n) for n in short.songs.n_beats]
    assert batch["bits"].shape == (3, max(lengths), len(short.feature_names))
    assert batch["valid"].sum(1).tolist() == lengths
    for b, n in enumerate(lengths):
        assert not batch["bits"][b, n:].any() and batch["keep"][b].tolist() == batch["valid"][b].tolist()


class _ShuffledColumns(SyntheticStore):
    """The same songs, descriptor columns stored in another order."""

    order = [3, 0, 6, 1, 5, 2, 4]

    def __init__(self):
        super().__init__(4, seed=1, min_bars=8, max_bars=10)
        self.descriptor_names = [DESCRIPTOR_NAMES[k] for k in self.order]

    def song_arrays(self, i):
        arrays = super().song_arrays(i)
        arrays.descriptors = arrays.descriptors[:, self.order]
        return arrays


def test_descriptors_come_out_in_the_models_order():
    store = _ShuffledColumns()
    _, desc = StoreHandle(store).read(1, 0, 20)
    same_songs = SyntheticStore(4, seed=1, min_bars=8, max_bars=10)
    np.testing.assert_array_equal(desc, same_songs.song_arrays(1).descriptors[:20])
    store.descriptor_names = store.descriptor_names[1:]
    with pytest.raises(ValueError, match="lacks descriptors"):
        StoreHandle(store).read(1, 0, 20)


def test_a_path_handle_pickles_without_its_open_store_and_reopens():
    handle = StoreHandle("synthetic:3:4")
    assert len(handle.store) == 3
    clone = pickle.loads(pickle.dumps(handle))
    assert clone._store is None and clone.store.songs.equals(handle.store.songs)


def test_a_loader_with_workers_reads_the_same_windows():
    handle = StoreHandle("synthetic:6:1")
    data = EvalWindows(handle, songs=range(6), max_len=64)
    one = list(DataLoader(data, batch_size=4, collate_fn=collate))
    two = list(DataLoader(data, batch_size=4, collate_fn=collate, num_workers=2, multiprocessing_context="spawn"))
    assert len(one) == len(two) and all(torch.equal(a["bits"], b["bits"]) for a, b in zip(one, two))


def test_ranks_get_disjoint_shards_that_cover_the_data(small_store):
    data = TrainWindows(StoreHandle(small_store), songs=range(len(small_store)), max_len=32)
    shards = []
    for rank in range(3):
        sampler = ResumableSampler(data, rank=rank, world_size=3, seed=5)
        sampler.set_position(epoch=2)
        shards.append([k for k, _ in sampler])
    flat = sorted(i for s in shards for i in s)
    assert len({len(s) for s in shards}) == 1
    assert set(flat) == set(range(len(data)))  # DistributedSampler pads with repeats to equal shards
    assert len(flat) - len(data) < 3


def test_a_sampler_resumed_mid_epoch_yields_the_rest_with_the_same_crops(small_store):
    data = TrainWindows(StoreHandle(small_store), songs=range(len(small_store)), max_len=8)
    sampler = ResumableSampler(data, rank=0, world_size=1, seed=5)
    sampler.set_position(epoch=3)
    whole = list(sampler)
    sampler.set_position(epoch=3, offset=4)
    assert list(sampler) == whole[4:] and len(sampler) == len(whole) - 4
    sampler.set_position(epoch=4)
    assert list(sampler) != whole  # a new epoch reshuffles
    key = whole[5]
    assert torch.equal(data[key]["bits"], data[key]["bits"])  # the crop is fixed by its seed
    starts = {data[(key[0], seed)]["start"] for seed in range(40)}
    assert len(starts) > 1  # ...and different seeds crop differently


def test_split_is_by_content_hash_deterministic_and_about_ten_percent():
    songs = pd.DataFrame({"content_hash": [f"{k:064x}" for k in range(2000)]})
    train, val = split_songs(songs)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 2000
    assert 150 < len(val) < 250
    assert all(hash_bucket(songs.content_hash[k]) == 0 for k in val)
    shuffled = songs.iloc[::-1]
    assert set(split_songs(shuffled)[1]) == set(val)  # a song's side does not depend on the table order


def test_a_tiny_store_still_gets_a_validation_song():
    songs = pd.DataFrame({"content_hash": ["a", "b", "c"]})
    with pytest.warns(UserWarning, match="validating on one song"):
        train, val = split_songs(songs)
    assert len(val) == 1 and len(train) == 2
