"""Windows of beats from the store, as PyTorch datasets.

A song longer than ``max_len`` beats is cut: training takes one random crop per item (a song of n beats is
ceil(n / max_len) items per epoch, so long songs are not under-sampled); evaluation walks overlapping
windows (``song_windows``) and keeps from each the beats nearest its centre, so every beat is predicted
exactly once, with context on both sides where the song has it.

The store is opened lazily, once per process (``StoreHandle``), so DataLoader workers never share a handle
opened in the parent. Sampling is sharded with ``torch.utils.data.DistributedSampler`` (``ResumableSampler``), so
the same dataset runs on one CPU or on many ranks, and ``ResumableSampler`` starts an epoch where a checkpoint
left it. Crops are seeded by (seed, epoch, item), so a resumed run sees exactly the windows it would have.

    ds = TrainWindows(StoreHandle("data/store.zarr"), songs=train_ids, max_len=512)
    loader = DataLoader(ds, batch_size=16, sampler=ResumableSampler(ds, rank=0, world_size=1), collate_fn=collate)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from bat.model.pairwise import DESCRIPTOR_NAMES


class StoreLike(Protocol):
    """What the datasets read from a store (``bat.store.open_store`` gives one; so does ``SyntheticStore``)."""

    feature_names: list[str]
    descriptor_names: list[str]
    songs: Any  # pandas DataFrame with content_hash, source, n_beats

    def __len__(self) -> int: ...

    def song_arrays(self, i: int) -> Any: ...  # .features (n, F) bool, .descriptors (n, D) int64


def open_any_store(spec: str | StoreLike) -> StoreLike:
    """A store from a path, ``synthetic:N[:seed]`` (made-up songs), or an already open store object."""
    if not isinstance(spec, str):
        return spec
    if spec.startswith("synthetic:"):
        from bat.data.synthetic import SyntheticStore

        n, _, seed = spec.removeprefix("synthetic:").partition(":")
        return SyntheticStore(int(n), seed=int(seed or 0))
    from bat.store import open_store

    return open_store(spec)


class StoreHandle:
    """A picklable store reference that opens the store on first use in each process."""

    def __init__(self, spec: str | StoreLike):
        self.spec = spec
        self._store, self._pid = (None, None) if isinstance(spec, str) else (spec, os.getpid())

    @property
    def store(self) -> StoreLike:
        if self._store is None or (isinstance(self.spec, str) and self._pid != os.getpid()):
            self._store, self._pid = open_any_store(self.spec), os.getpid()
        return self._store

    def __getstate__(self):
        state = dict(self.__dict__)
        if isinstance(self.spec, str):
            state["_store"] = state["_pid"] = state["_order_for"] = None  # reopen in the worker
        return state

    def descriptor_order(self) -> list[int]:
        """Column of each DESCRIPTOR_NAMES entry in the store's descriptor table (computed once per open)."""
        store = self.store
        if getattr(self, "_order_for", None) is store:
            return self._order
        names = list(store.descriptor_names)
        missing = [n for n in DESCRIPTOR_NAMES if n not in names]
        if missing:
            raise ValueError(
                f"store {self.spec!r} lacks descriptors {missing} (it has {names}); "
                "re-featurize it with this bat version"
            )
        self._order, self._order_for = [names.index(n) for n in DESCRIPTOR_NAMES], store
        return self._order

    def read(self, song: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(features (n, F) bool, descriptors (n, len(DESCRIPTOR_NAMES)) int64) of beats start:stop."""
        arrays = self.store.song_arrays(int(song))
        bits = np.asarray(arrays.features[start:stop], dtype=bool)
        desc = np.asarray(arrays.descriptors[start:stop], dtype=np.int64)[:, self.descriptor_order()]
        return bits, desc


@dataclass(frozen=True)
class Window:
    song: int
    start: int  # first beat of the window
    stop: int  # one past its last beat
    keep_start: int  # beats keep_start:keep_stop are scored from this window (absolute beat numbers)
    keep_stop: int


def song_windows(song: int, n_beats: int, max_len: int, stride: int | None = None) -> list[Window]:
    """Overlapping windows covering a song; their keep ranges partition 0..n_beats.

    Windows start every ``stride`` beats (default max_len // 2) and the last one ends at the song's end;
    each window keeps the beats from the middle of its overlap with the previous window onwards.
    """
    if n_beats <= max_len:
        return [Window(song, 0, n_beats, 0, n_beats)]
    stride = stride or max_len // 2
    if not 0 < stride <= max_len:
        raise ValueError(f"stride must be in 1..max_len={max_len}, got {stride}")
    starts = list(range(0, n_beats - max_len, stride)) + [n_beats - max_len]
    # window k keeps from the middle of its overlap with window k - 1: [starts[k], starts[k - 1] + max_len)
    keeps = [0] + [(s + prev + max_len) // 2 for prev, s in zip(starts, starts[1:])]
    stops = keeps[1:] + [n_beats]
    return [Window(song, s, s + max_len, k0, k1) for s, k0, k1 in zip(starts, keeps, stops)]


def _item(handle: StoreHandle, song: int, start: int, stop: int, keep: np.ndarray) -> dict:
    bits, desc = handle.read(song, start, stop)
    return {
        "bits": torch.from_numpy(bits),
        "desc": torch.from_numpy(desc),
        "keep": torch.from_numpy(keep),
        "song": song,
        "start": start,
    }


def crop_seed(seed: int, epoch: int, item: int) -> int:
    """The seed of one training crop: fixed by (run seed, epoch, item), so a resumed run crops alike."""
    return ((seed * 1_000_003 + epoch) * 1_000_033 + item) % 2**63


class TrainWindows(Dataset):
    """Random crops of at most ``max_len`` beats; song s appears ceil(n_beats[s] / max_len) times per epoch.

    Indexed by ``(item, crop seed)`` (what ``ResumableSampler`` yields) or by ``item`` alone (seed = item)."""

    def __init__(self, handle: StoreHandle, songs: Sequence[int], max_len: int = 512):
        self.handle, self.max_len = handle, max_len
        n_beats = handle.store.songs["n_beats"]
        self.n_beats = {int(s): int(n_beats.loc[s]) for s in songs}
        self.items = [s for s in self.n_beats for _ in range(max(1, math.ceil(self.n_beats[s] / max_len)))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        k, seed = key if isinstance(key, tuple) else (key, key)
        song = self.items[k]
        n = self.n_beats[song]
        start = int(np.random.default_rng(seed).integers(0, n - self.max_len + 1)) if n > self.max_len else 0
        stop = min(n, start + self.max_len)
        return _item(self.handle, song, start, stop, np.ones(stop - start, bool))


class EvalWindows(Dataset):
    """Every window of ``song_windows`` for the given songs; ``keep`` marks the beats scored from it."""

    def __init__(self, handle: StoreHandle, songs: Sequence[int], max_len: int = 512, stride: int | None = None):
        self.handle, self.max_len = handle, max_len
        n_beats = handle.store.songs["n_beats"]
        self.windows = [w for s in songs for w in song_windows(int(s), int(n_beats.loc[s]), max_len, stride)]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, k: int) -> dict:
        w = self.windows[k]
        keep = np.zeros(w.stop - w.start, bool)
        keep[w.keep_start - w.start : w.keep_stop - w.start] = True
        return _item(self.handle, w.song, w.start, w.stop, keep)


def collate(items: list[dict]) -> dict:
    """Pad a list of windows to the longest: bits (B, L, F) bool, desc (B, L, D) int64, valid/keep (B, L) bool."""
    L = max(len(it["bits"]) for it in items)
    B, F, D = len(items), items[0]["bits"].shape[1], items[0]["desc"].shape[1]
    bits = torch.zeros(B, L, F, dtype=torch.bool)
    desc = torch.zeros(B, L, D, dtype=torch.int64)
    valid = torch.zeros(B, L, dtype=torch.bool)
    keep = torch.zeros(B, L, dtype=torch.bool)
    for b, it in enumerate(items):
        n = len(it["bits"])
        bits[b, :n], desc[b, :n], valid[b, :n], keep[b, :n] = it["bits"], it["desc"], True, it["keep"]
    return {
        "bits": bits,
        "desc": desc,
        "valid": valid,
        "keep": keep,
        "song": torch.tensor([it["song"] for it in items]),
        "start": torch.tensor([it["start"] for it in items]),
    }


class ResumableSampler(Sampler):
    """This rank's share of an epoch (``DistributedSampler`` order), from a position a checkpoint can record.

    Yields ``(item, crop seed)``. ``epoch`` and ``offset`` (items of this epoch already consumed) are read when
    iteration starts, so a DataLoader built once follows ``set_position`` at every epoch."""

    def __init__(self, dataset: Dataset, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True):
        self.ranks = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.seed, self.epoch, self.offset = seed, 0, 0

    def set_position(self, epoch: int, offset: int = 0) -> None:
        self.epoch, self.offset = epoch, offset

    def __iter__(self):
        self.ranks.set_epoch(self.epoch)
        for k in list(self.ranks)[self.offset :]:
            yield (k, crop_seed(self.seed, self.epoch, k))

    def __len__(self) -> int:
        return max(0, len(self.ranks) - self.offset)


def worker_context(num_workers: int):
    """Start DataLoader workers fresh (spawn), not forked.

    Training runs inside Prefect flows and next to Dask clients, whose threads make a forked worker unsafe
    (seen here: workers forked after a flow run exited at once with code 1). Datasets open the store lazily,
    so a spawned worker only needs the path.
    """
    return "spawn" if num_workers > 0 else None
