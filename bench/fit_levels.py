"""Refit ``bat.beats.levels.LEVEL_WEIGHTS``: the weights that choose the beat level among the DBN's candidates.

    .venv/bin/python bench/fit_levels.py [--essen 300] [--fiddle 40] [--pop 20] [--melody]

``--melody`` refits ``MELODY_LEVEL_WEIGHTS`` instead: on the single lines (``is_melody``) only, folk and fiddle
tunes weighing alike (their activation carries the melodic accent, ``bat.beats.accent``).

Training data, none of it in the benchmark's held-out tune sample (bench/tune_sample.py, seed 0): humanized
performances of ``--essen`` Essen and ``--fiddle`` x 3 fiddle tunes drawn at random (seed 1), of the
even-numbered demo-corpus files and of the even-numbered pop files. For every song, each candidate level's
features (``bat.beats.tracking.candidate_levels``) and its beat F-measure against the truth. The weights
maximise the mean expected F of a softmax over each song's candidates (temperature 0.5, Adam from the current
weights), then are scaled so that the softmax share is a calibrated confidence (the scale that gives the
truest level the highest mean log-probability). Prints the weights to paste into levels.py, and per kind the
mean beat F of the level each set of weights chooses, before and after, on the training songs and on the
held-out sample.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pretty_midi  # noqa: E402

from bat.beats import tracking  # noqa: E402
from bat.beats.bars import is_melody  # noqa: E402
from bat.beats.levels import LEVEL_WEIGHTS, MELODY_LEVEL_WEIGHTS, choice_values  # noqa: E402
from beats import corpus, f_measure, kind_of  # noqa: E402
from tune_sample import converted, fitting_draws, performed  # noqa: E402

pretty_midi.pretty_midi.MAX_TICK = 1e10
warnings.filterwarnings("ignore")
NAMES = list(LEVEL_WEIGHTS)


KINDS = ("folk song", "fiddle tune", "chorale", "pop")


def song_rows(files: list[str], folder: Path, even_only: bool = False, melody: bool = False) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(kind, candidate features (L, len(NAMES)), candidate beat F (L,)) per song of ``KINDS`` (``melody``: per
    single line); each file is humanized with its index as the seed, as bench/beats.py does."""
    rows = []
    for index, source in enumerate(files):
        if kind_of(source) not in KINDS or (even_only and index % 2):
            continue
        performance, song = performed(source, index, folder)
        if melody and not is_melody(song):
            continue
        levels = tracking.candidate_levels(song, tracking.note_activation(song))
        if levels:
            features = np.array([[values[name] for name in NAMES] for values in choice_values(levels)])
            scores = np.array([f_measure(performance.beats, level.times[level.times <= song.end_time]) for level in levels])
            rows.append((kind_of(source), features, scores))
        print(f"\r{index + 1}/{len(files)} songs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def fit_expected_f(
    rows, start: np.ndarray, temperature: float, steps: int, lam: float = 0.0, balance_kinds: bool = False,
    standardize: bool = False, offsets: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Weights maximising the mean expected F-measure of a softmax over each song's candidates (Adam from
    ``start``). ``rows``: (kind, candidate features (C, K), candidate F (C,)), C may differ per song.
    ``lam``: L2 on the weights of standardised features (``standardize``), so that every feature is shrunk alike;
    ``balance_kinds``: every kind weighs the same however many songs it has; ``offsets``: per song, a fixed term
    of each candidate's logit (C,), weighed elsewhere."""
    import torch

    most = max(len(scores) for _, _, scores in rows)
    features = torch.zeros(len(rows), most, len(start), dtype=torch.float64)
    scores = torch.zeros(len(rows), most, dtype=torch.float64)
    padding = torch.ones(len(rows), most, dtype=torch.bool)
    fixed = torch.zeros(len(rows), most, dtype=torch.float64)
    for i, (_, x, f) in enumerate(rows):
        features[i, : len(f)], scores[i, : len(f)], padding[i, : len(f)] = torch.tensor(x), torch.tensor(f), False
        if offsets is not None:
            fixed[i, : len(f)] = torch.tensor(offsets[i])
    scale = features[~padding].std(0).clamp_min(1e-6) if standardize else torch.ones(len(start), dtype=torch.float64)
    count = Counter(kind for kind, _, _ in rows)
    song_weight = torch.tensor([1.0 / count[kind] / len(count) if balance_kinds else 1.0 / len(rows) for kind, _, _ in rows])
    weights = (torch.tensor(start, dtype=torch.float64) * scale).requires_grad_()
    optimizer = torch.optim.Adam([weights], lr=0.03)
    for _ in range(steps):
        optimizer.zero_grad()
        logits = ((features / scale @ weights + fixed) / temperature).masked_fill(padding, -torch.inf)
        expected = (song_weight * (torch.softmax(logits, 1) * scores).sum(1)).sum()
        (-expected + lam * (weights ** 2).sum()).backward()
        optimizer.step()
    return (weights / scale).detach().numpy()


def calibration_scale(rows, weights: np.ndarray) -> float:
    def log_likelihood(scale: float) -> float:
        total = 0.0
        for _, features, scores in rows:
            z = features @ weights * scale
            total += (z - z.max() - np.log(np.exp(z - z.max()).sum()))[int(np.argmax(scores))]
        return total / len(rows)

    return max((0.05, 0.1, 0.2, 0.3, 0.5, 1.0), key=log_likelihood)


def report(rows, weights: np.ndarray, label: str) -> None:
    by_kind: dict[str, list[float]] = {}
    for kind, features, scores in rows:
        by_kind.setdefault(kind, []).append(scores[int(np.argmax(features @ weights))])
    print(label, {kind: f"{np.mean(values):.3f} (n={len(values)})" for kind, values in sorted(by_kind.items())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--essen", type=int, default=300)
    parser.add_argument("--fiddle", type=int, default=40)
    parser.add_argument("--pop", type=int, default=20)
    parser.add_argument("--melody", action="store_true", help="refit MELODY_LEVEL_WEIGHTS on single lines")
    args = parser.parse_args()
    draws = fitting_draws((args.essen,), (args.fiddle,))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = song_rows(converted(draws["1"], folder / "1"), folder, melody=args.melody)
        rows += song_rows(corpus(None, 0 if args.melody else args.pop, folder, 0), folder, even_only=True, melody=args.melody)
        held = song_rows(converted(draws["held"], folder / "held"), folder, melody=args.melody)
    current = MELODY_LEVEL_WEIGHTS if args.melody else LEVEL_WEIGHTS
    start = np.array([current[name] for name in NAMES])
    fitted = fit_expected_f(rows, start, temperature=0.5, steps=1500, balance_kinds=args.melody)
    fitted = fitted * calibration_scale(rows, fitted)
    report(rows, start, "mean beat F of the chosen level, training songs, current weights:")
    report(rows, fitted, "mean beat F of the chosen level, training songs, fitted weights: ")
    report(held, start, "mean beat F of the chosen level, held-out sample, current weights:")
    report(held, fitted, "mean beat F of the chosen level, held-out sample, fitted weights: ")
    print("MELODY_LEVEL_WEIGHTS = {" if args.melody else "LEVEL_WEIGHTS = {")
    for name, weight in zip(NAMES, fitted):
        print(f'    "{name}": {weight:.2f},')
    print("}")


if __name__ == "__main__":
    main()
