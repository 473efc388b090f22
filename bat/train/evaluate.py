"""Held-out evaluation of masked-beat prediction, its baselines, and the report.

On validation songs, every window (``EvalWindows``) is predicted in K = round(1 / mask_rate) passes (7 at
15%): its beats (or bars) are dealt at random into K groups, and pass k hides group k, so each pass hides
about mask_rate of the beats, as in training, and every held-out beat is masked and scored exactly once. The
deal is seeded by (seed, song, window start), so the pairwise and the plain encoder are scored on exactly
the same beats with the same context. (One 15% draw per window scored only ~100 beats of the demo corpus's
12 held-out songs: too few to tell predictors apart.) The baselines predict the same beats:
- ``base_rate``: each feature's frequency in the training songs, for every beat (AUROC 0.5 by design);
- ``copy_previous_bar``: the beat at the same position of the previous bar (bar_index - 1, same beat_in_bar),
  calibrated on the training songs as P(bit | copied bit); the base rate where there is no such beat.
  It reads the previous bar's true bits even where the model saw that beat masked too (it is a baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from bat.data.dataset import EvalWindows, StoreHandle, collate, worker_context
from bat.model.pairwise import DESCRIPTOR_NAMES
from bat.train.objective import SPANS

SUMMARY_KEYS = ("loss", "auroc_macro", "f1_macro", "n_features_scored")


def feature_groups(store) -> list[str]:
    """The group of each of the store's features: the store's own list, else the feature registry's."""
    if getattr(store, "feature_groups", None) is not None:
        return list(store.feature_groups)
    try:
        from bat.features.registry import FEATURES

        by_name = {f.name: f.group for f in FEATURES}
    except ImportError:
        by_name = {}
    return [by_name.get(name, "other") for name in store.feature_names]


@dataclass
class Predictions:
    song: np.ndarray  # (N,) song number of each scored beat
    beat: np.ndarray  # (N,) beat number within its song
    prob: np.ndarray  # (N, F) predicted probability of each feature bit
    truth: np.ndarray  # (N, F) bool, the true bits


def mask_passes(rate: float) -> int:
    """How many evaluation passes deal every beat into one mask of density ~``rate``."""
    if not 0 < rate <= 1:
        raise ValueError(f"mask rate must be in (0, 1], got {rate}")
    return max(1, round(1 / rate))


def window_masks(valid: Tensor, desc: Tensor, song: int, start: int, rate: float, span: str, seed: int) -> Tensor:
    """(K, L) bool: the masks of the K evaluation passes over one window; they partition its real beats.

    valid (1, L) with the real beats first (as ``collate`` pads), desc (1, L, D). Each beat (span="beat") or
    bar (span="bar") goes to one of K groups, uniformly at random from a generator seeded by (seed, song,
    start) and drawn for the real beats only: the same whatever the model and the padding of the batch.
    """
    if span not in SPANS:
        raise ValueError(f"mask span must be one of {SPANS}, got {span!r}")
    gen = torch.Generator().manual_seed((seed * 1_000_003 + song) * 100_003 + start)
    K, L, n = mask_passes(rate), valid.shape[1], int(valid.sum())
    group = torch.full((L,), -1, dtype=torch.int64)  # -1: padding, in no pass
    if n and span == "beat":
        group[:n] = torch.randint(0, K, (n,), generator=gen)
    elif n:
        bar = desc[0, :n, DESCRIPTOR_NAMES.index("bar_index")].cpu()
        bar = bar - bar.min()  # 0-based within the window
        group[:n] = torch.randint(0, K, (int(bar.max()) + 1,), generator=gen)[bar]
    return group[None, :] == torch.arange(K)[:, None]  # (K, L)


@torch.no_grad()
def predict_masked(
    model,
    dataset: EvalWindows,
    *,
    batch_size: int = 16,
    mask_rate: float = 0.15,
    span: str = "beat",
    seed: int = 0,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
) -> Predictions:
    """The model's predictions for every beat of the kept ranges, each from the pass that masks it."""
    was_training = model.training
    model.eval()
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=num_workers,
        multiprocessing_context=worker_context(num_workers),
    )
    songs, beats, probs, truths = [], [], [], []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")
    for batch in loader:
        valid, desc = batch["valid"], batch["desc"]
        song, start = batch["song"].tolist(), batch["start"].tolist()
        passes = torch.stack(
            [
                window_masks(valid[b : b + 1], desc[b : b + 1], song[b], start[b], mask_rate, span, seed)
                for b in range(len(valid))
            ],
            dim=1,
        )  # (K, B, L)
        for masked in passes:
            with autocast:
                logits = model(batch["bits"].to(device), desc.to(device), valid.to(device), masked.to(device))
            scored = masked & batch["keep"]  # (B, L)
            b_idx, pos = scored.nonzero(as_tuple=True)
            songs.append(batch["song"][b_idx].numpy())
            beats.append((batch["start"][b_idx] + pos).numpy())
            probs.append(logits.float().sigmoid()[scored.to(logits.device)].cpu().numpy())
            truths.append(batch["bits"][scored].numpy())
    model.train(was_training)
    song_arr, beat_arr = np.concatenate(songs), np.concatenate(beats)
    order = np.lexsort((beat_arr, song_arr))  # by song, then beat: the same rows whatever the pass order
    return Predictions(song_arr[order], beat_arr[order], np.concatenate(probs)[order], np.concatenate(truths)[order])


def previous_bar(desc: np.ndarray) -> np.ndarray:
    """(n,) index of the beat at the same beat_in_bar in the previous bar, -1 where there is none."""
    bar = desc[:, DESCRIPTOR_NAMES.index("bar_index")]
    pos = desc[:, DESCRIPTOR_NAMES.index("beat_in_bar")]
    width = int(pos.max()) + 1 if len(pos) else 1
    key = bar * width + pos  # unique per (bar, beat_in_bar) on a well-formed grid
    order = np.argsort(key, kind="stable")
    want = (bar - 1) * width + pos
    at = np.clip(np.searchsorted(key[order], want), 0, len(key) - 1)
    found = (key[order][at] == want) & (bar > 0)
    return np.where(found, order[at], -1)


@dataclass
class BeatStats:
    base_rate: np.ndarray  # (F,) frequency of each feature over the training beats
    copy_on: np.ndarray  # (F,) P(bit | the previous bar's beat has it)
    copy_off: np.ndarray  # (F,) P(bit | the previous bar's beat lacks it)


def train_stats(handle: StoreHandle, songs, max_songs: int = 2000, seed: int = 0) -> BeatStats:
    """Base rates and copy-baseline calibration from (at most ``max_songs``, a seeded sample of) training songs."""
    songs = np.asarray(songs)
    if len(songs) > max_songs:
        songs = np.sort(np.random.default_rng(seed).choice(songs, max_songs, replace=False))
    n_feat = len(handle.store.feature_names)
    total, ones = 0, np.zeros(n_feat)
    prev_on, prev_on_and_y, prev_off, prev_off_and_y = (np.zeros(n_feat) for _ in range(4))
    for s in songs:
        bits, desc = handle.read(int(s), 0, int(handle.store.songs["n_beats"].loc[s]))
        total += len(bits)
        ones += bits.sum(0)
        prev = previous_bar(desc)
        has = prev >= 0
        y, copied = bits[has], bits[prev[has]]
        prev_on += copied.sum(0)
        prev_on_and_y += (copied & y).sum(0)
        prev_off += (~copied).sum(0)
        prev_off_and_y += (~copied & y).sum(0)
    base = (ones + 1) / (total + 2)  # Laplace: never exactly 0 or 1
    return BeatStats(
        base_rate=base,
        copy_on=(prev_on_and_y + 2 * base) / (prev_on + 2),  # shrunk towards the base rate
        copy_off=(prev_off_and_y + 2 * base) / (prev_off + 2),
    )


def baseline_probs(stats: BeatStats, handle: StoreHandle, preds: Predictions) -> dict[str, np.ndarray]:
    """Predictions of the two baselines for exactly the beats in ``preds``."""
    n = len(preds.song)
    base = np.broadcast_to(stats.base_rate, (n, len(stats.base_rate))).copy()
    copy = base.copy()
    for s in np.unique(preds.song):
        rows = np.flatnonzero(preds.song == s)
        bits, desc = handle.read(int(s), 0, int(handle.store.songs["n_beats"].loc[s]))
        prev = previous_bar(desc)[preds.beat[rows]]
        has = prev >= 0
        copied = bits[prev[has]]
        copy[rows[has]] = np.where(copied, stats.copy_on, stats.copy_off)
    return {"base_rate": base, "copy_previous_bar": copy}


def summary(scores: dict) -> dict:
    return {k: scores[k] for k in SUMMARY_KEYS}


def build_report(scored: dict[str, dict], meta: dict) -> dict:
    """The report: ``scored`` maps "model", "base_rate", "copy_previous_bar", "plain_encoder" to ``score()``
    results (plain_encoder may be None); per-group scores go under "groups", ``meta`` beside them."""
    report = {
        "model": summary(scored["model"]),
        "baselines": {k: (summary(v) if v is not None else None) for k, v in scored.items() if k != "model"},
        "groups": {k: v["groups"] for k, v in scored.items() if v is not None},
    }
    report.update(meta)
    return report


def report_tables(report: dict) -> list:
    """Rich tables of the report: loss/AUROC/F1 per predictor, then macro AUROC per feature group."""
    from rich.table import Table

    rows = {"model": report["model"], **{k: v for k, v in report["baselines"].items() if v is not None}}

    def fmt(x):
        return "-" if x is None else f"{x:.3f}"

    main = Table(title="masked-beat prediction, held-out songs")
    main.add_column("predictor")
    for col in ("loss", "auroc_macro", "f1_macro"):
        main.add_column(col, justify="right")
    for name, s in rows.items():
        main.add_row(name, *(fmt(s[c]) for c in ("loss", "auroc_macro", "f1_macro")))
    by_group = Table(title="macro AUROC by feature group")
    by_group.add_column("group")
    for name in rows:
        by_group.add_column(name, justify="right")
    groups = report.get("groups", {})
    for g in groups.get("model", {}):
        by_group.add_row(g, *(fmt(groups.get(name, {}).get(g, {}).get("auroc_macro")) for name in rows))
    return [main, by_group]
