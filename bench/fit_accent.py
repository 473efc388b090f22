"""Refit ``bat/beats/melodic_accent.npz``: the trees that tell, from the melody, which notes fall on a beat and on a
downbeat; then the weight ``MELODY_BARS`` gives the downbeat trees.

    .venv/bin/python bench/fit_accent.py [--essen 300 600] [--fiddle 40 80] [--tune 150 25] [--out bat/beats/melodic_accent.npz]

Training data, none of it in the benchmark's held-out tune sample (bench/tune_sample.py, seed 0), the same as
bench/fit_bars.py's: humanized performances of Essen and fiddle tunes drawn at random in two draws (seeds 1
and 2) and the even-numbered demo-corpus files; single lines only (``is_melody``). Every note of the line
(``accent.melody_line``) is a row: its ``ACCENT_FEATURES`` and whether it lies within 12% of a beat of a true
beat (of a true downbeat). Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier: 300 trees of
up to 31 leaves per target) are fitted and written as arrays that ``accent.AccentTrees`` evaluates with numpy
(checked equal to scikit-learn's own decision function). Prints the ROC AUC of the log-odds per kind, on the
training and the held-out tunes, and of the note durations alone for comparison (what the activation weighed
before).

The downbeat trees' weight in the bars (``BarWeights.melodic_downbeat``) is then chosen on a third draw of
``--tune`` tunes (seed 3, in neither the training draws nor the held-out sample: the trees are overconfident on
the tunes they were fitted on), tracked with the new trees: the weight of a grid that gives the best mean
downbeat F-measure, folk and fiddle tunes weighing alike. Prints it, and the held-out downbeat F per weight.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pretty_midi  # noqa: E402

from bat.beats import tracking  # noqa: E402
from bat.beats.accent import ACCENT_FEATURES, MODEL_PATH, TARGETS, AccentTrees, accent_features, accent_trees, melody_line, save_trees  # noqa: E402
from bat.beats.bars import MELODY_BARS, bar_hypotheses, downbeat_evidence, is_melody  # noqa: E402
from beats import corpus, f_measure, kind_of  # noqa: E402
from tune_sample import converted, fitting_draws, performed  # noqa: E402

pretty_midi.pretty_midi.MAX_TICK = 1e10
warnings.filterwarnings("ignore")
ON_BEAT = 0.12  # a note within this share of a beat period of a true beat is on it
LENGTHS = (2, 3, 4)


def note_rows(files: list[str], folder: Path, even_only: bool = False) -> list[tuple[str, np.ndarray, dict[str, np.ndarray]]]:
    """(kind, features (L, F), {target: on a beat or a downbeat (L,)}) per single-line tune; each file humanized
    with its index as the seed."""
    rows = []
    for index, source in enumerate(files):
        if kind_of(source) not in ("folk song", "fiddle tune") or (even_only and index % 2):
            continue
        performance, song = performed(source, index, folder)
        if not is_melody(song) or len(performance.beats) < 4:
            continue
        line = melody_line(song.notes)
        tolerance = ON_BEAT * float(np.median(np.diff(performance.beats)))
        near = lambda times: np.abs(line.start[:, None] - np.asarray(times)[None, :]).min(axis=1) < tolerance  # noqa: E731
        rows.append((kind_of(source), accent_features(line), {"beat": near(performance.beats), "downbeat": near(performance.downbeats)}))
        print(f"\r{index + 1}/{len(files)} songs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def bar_rows(files: list[str], folder: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(kind, bar scores without the melodic downbeat (H,), what a unit weight of it adds (H,), downbeat F (H,))
    per single-line tune, over the beats the tracker chooses."""
    rows = []
    without = replace(MELODY_BARS, melodic_downbeat=0.0)
    unit = replace(MELODY_BARS, melodic_downbeat=1.0)
    for index, source in enumerate(files):
        if kind_of(source) not in ("folk song", "fiddle tune"):
            continue
        performance, song = performed(source, index, folder)
        if not is_melody(song):
            continue
        activation = tracking.note_activation(song)
        beats = tracking.track_activation(activation, song, "madmom_midi").times
        if len(beats) < 4:
            continue
        cues = tracking.song_bar_cues(song, activation, beats, tracking.DEFAULT_TRACKING, melody=True)
        evidence = downbeat_evidence(song, beats)
        base = bar_hypotheses(evidence, cues, LENGTHS, weights=without)
        added = bar_hypotheses(evidence, cues, LENGTHS, weights=unit).scores - base.scores
        scores = np.array([f_measure(performance.downbeats, beats[(np.arange(len(beats)) - phase) % length == 0])
                           for length, phase in zip(base.lengths, base.phases)])
        rows.append((kind_of(source), base.scores, added, scores))
        print(f"\r{index + 1}/{len(files)} songs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def downbeat_f(rows, weight: float) -> dict[str, float]:
    by_kind: dict[str, list[float]] = {}
    for kind, base, added, scores in rows:
        by_kind.setdefault(kind, []).append(scores[int(np.argmax(base + weight * added))])
    return {kind: round(float(np.mean(values)), 3) for kind, values in sorted(by_kind.items())}


def trees_of(classifier) -> AccentTrees:
    """scikit-learn's fitted trees as ``AccentTrees`` arrays, padded with leaves to one node count."""
    trees = [predictors[0].nodes for predictors in classifier._predictors]
    width = max(len(nodes) for nodes in trees)
    pad = lambda field, fill, dtype: np.stack([  # noqa: E731
        np.concatenate([nodes[field].astype(dtype), np.full(width - len(nodes), fill, dtype)]) for nodes in trees])
    return AccentTrees(
        feature=pad("feature_idx", 0, np.int16), threshold=pad("num_threshold", 0.0, np.float64), left=pad("left", 0, np.int16),
        right=pad("right", 0, np.int16), value=pad("value", 0.0, np.float64), leaf=pad("is_leaf", 1, bool),
        baseline=float(np.ravel(classifier._baseline_prediction)[0]),
    )


def auc_by_kind(rows, target: str, score) -> dict[str, str]:
    from sklearn.metrics import roc_auc_score

    kinds = sorted({kind for kind, _, _ in rows})
    result = {}
    for kind in kinds:
        x = np.concatenate([features for k, features, _ in rows if k == kind])
        y = np.concatenate([labels[target] for k, _, labels in rows if k == kind])
        result[kind] = f"{roc_auc_score(y, score(x)):.3f} (notes={len(y)}, on a {target}={y.mean():.2f})"
    return result


def main() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--essen", type=int, nargs=2, default=(300, 600), help="Essen tunes in the two draws")
    parser.add_argument("--fiddle", type=int, nargs=2, default=(40, 80), help="tunes of each fiddle collection in the two draws")
    parser.add_argument("--tune", type=int, nargs=2, default=(150, 25), help="Essen and per-collection fiddle tunes to choose the bar weight on")
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args()
    draws = fitting_draws((args.essen[0], args.essen[1], args.tune[0]), (args.fiddle[0], args.fiddle[1], args.tune[1]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = note_rows(converted(draws["1"], folder / "1"), folder) + note_rows(converted(draws["2"], folder / "2"), folder)
        rows += note_rows(corpus(None, 0, folder, 0), folder, even_only=True)
        held = note_rows(converted(draws["held"], folder / "held"), folder)
        x = np.concatenate([features for _, features, _ in rows])
        trees = {}
        for target in TARGETS:
            y = np.concatenate([labels[target] for _, _, labels in rows])
            classifier = HistGradientBoostingClassifier(max_iter=300, max_leaf_nodes=31, learning_rate=0.05, random_state=0).fit(x, y)
            trees[target] = trees_of(classifier)
            check = x[:: max(1, len(x) // 5000)]
            gap = float(np.abs(trees[target].log_odds(check) - classifier.decision_function(check)).max())
            if gap > 1e-6:
                raise SystemExit(f"the exported {target} trees disagree with scikit-learn's by {gap}")
            print(f"ROC AUC of 'on a {target}', the trees, training:", auc_by_kind(rows, target, trees[target].log_odds))
            print(f"ROC AUC of 'on a {target}', the trees, held out:", auc_by_kind(held, target, trees[target].log_odds))
        durations = [ACCENT_FEATURES.index(name) for name in ("dur", "dur_prev", "dur_change")]
        y = np.concatenate([labels["beat"] for _, _, labels in rows])
        by_duration = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x[:, durations], y)
        print("ROC AUC of 'on a beat', durations alone, held out:", auc_by_kind(held, "beat", lambda f: by_duration.decision_function(f[:, durations])))
        save_trees(args.out, trees)
        print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
        if args.out.resolve() != MODEL_PATH.resolve():
            return  # the tracker reads MODEL_PATH: the bar weight is chosen only for the trees it will use
        accent_trees.cache_clear()
        tuning = bar_rows(converted(draws["3"], folder / "3"), folder)
        held_bars = bar_rows(converted(draws["held"], folder / "held"), folder)
    grid = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
    for weight in grid:
        print(f"melodic_downbeat={weight}: mean downbeat F, tuning draw {downbeat_f(tuning, weight)}, held out {downbeat_f(held_bars, weight)}")
    best = max(grid, key=lambda weight: np.mean(list(downbeat_f(tuning, weight).values())))
    print(f"MELODY_BARS: melodic_downbeat={best}")


if __name__ == "__main__":
    main()
