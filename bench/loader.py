"""Does the data loader keep up with training? Windows/s read from the store against windows/s the model eats.

    .venv/bin/python bench/loader.py --store data/store.zarr          # a featurized store
    .venv/bin/python bench/loader.py                                  # synthetic:200 when no store is given
    .venv/bin/python bench/loader.py --config small --max-len 512 --batch 16 --workers 0 2 4

Loader: random training crops (``TrainWindows``) through a DataLoader with each worker count, collated and
padded, nothing else. Model: optimizer steps (forward, backward, AdamW) of the pairwise and the plain encoder
on batches fetched beforehand; its consumption rate is steps/s x batch. A headroom above 1 means the loader
with that many workers is not the bottleneck.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from bat.data.dataset import StoreHandle, TrainWindows, collate, ResumableSampler  # noqa: E402
from bat.train.recipe import PretrainConfig, PretrainRecipe  # noqa: E402


def loader_rate(handle: StoreHandle, songs, args, workers: int) -> float:
    data = TrainWindows(handle, songs, args.max_len)
    loader = DataLoader(
        data,
        batch_size=args.batch,
        sampler=ResumableSampler(data, seed=0),
        collate_fn=collate,
        num_workers=workers,
        persistent_workers=False,
    )
    it = iter(itertools.cycle(loader)) if len(loader) < args.batches + 2 else iter(loader)
    next(it)  # workers started, first batch in
    t0 = time.perf_counter()
    n = sum(len(next(it)["song"]) for _ in range(args.batches))
    return n / (time.perf_counter() - t0)


def model_rate(store_spec: str, args, pairwise: bool, batches: list[dict]) -> float:
    cfg = PretrainConfig(
        store=store_spec,
        model=args.config,
        pairwise=pairwise,
        batch_size=args.batch,
        max_len=args.max_len,
        device=args.device,
    )
    recipe = PretrainRecipe(cfg).setup()
    recipe.train_step([batches[0]])  # warm-up
    if recipe.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b in batches[1:]:
        recipe.train_step([b])
    if recipe.device.type == "cuda":
        torch.cuda.synchronize()
    return (len(batches) - 1) * args.batch / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="synthetic:200", help="store path, or synthetic:N")
    parser.add_argument("--config", default="tiny", help="model config (tiny, small, base)")
    parser.add_argument("--max-len", type=int, default=512, help="beats per window")
    parser.add_argument("--batch", type=int, default=16, help="windows per batch")
    parser.add_argument("--batches", type=int, default=20, help="batches timed for the loader")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps timed for the model")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to try")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args()

    handle = StoreHandle(args.store)
    songs = list(handle.store.songs.index)
    beats = int(handle.store.songs["n_beats"].sum())
    print(f"store {args.store}: {len(songs)} songs, {beats} beats; windows of {args.max_len} beats, batch {args.batch}")
    rates = {w: loader_rate(handle, songs, args, w) for w in args.workers}
    for w, r in rates.items():
        print(f"loader   workers={w:<2}            {r:10.1f} windows/s")
    torch.manual_seed(0)
    data = TrainWindows(handle, songs, args.max_len)
    loader = DataLoader(data, batch_size=args.batch, shuffle=True, collate_fn=collate)
    batches = list(itertools.islice(iter(loader), args.steps + 1))
    for pairwise in (True, False):
        r = model_rate(args.store, args, pairwise, batches)
        name = "pairwise" if pairwise else "plain"
        best = max(rates.values())
        print(f"model    {args.config:<5} {name:<9}      {r:10.1f} windows/s  (loader headroom {best / r:.1f}x)")


if __name__ == "__main__":
    main()
