"""Refit ``bat.beats.bars.MELODY_BARS``: the weights that place the bars over the beats of a single melody line.

    .venv/bin/python bench/fit_bars.py [--essen 300 600] [--fiddle 40 80] [--lam 0.01]

Training data, none of it in the benchmark's held-out tune sample (bench/tune_sample.py, seed 0): humanized
performances of Essen and fiddle tunes drawn at random in two draws (seeds 1 and 2, the second leaving out
the first; the first is bench/fit_levels.py's sample), and the even-numbered demo-corpus files; single lines
only (``is_melody``). For every tune, the beats the tracker chooses and the truest candidate level's beats,
and over each every bar hypothesis: its terms (``hypothesis_terms``) and its downbeat F-measure.

The model is small on purpose: a template that contrasts the downbeat with the bar's other beats (shared by
all bar lengths), one for the third beat of a bar of four, and per bar length the song-wide terms of
``BarWeights``. Fitted on standardised terms (L2 ``--lam``) to maximise the mean expected F of a softmax over
each tune's hypotheses (temperature 0.3, Adam), folk and fiddle tunes weighing equally. With all terms
(per-position templates of every length, melodic cues: leaps, agogic accents, rests, ties, pitch
repetition) it fitted the training tunes better and the held-out ones no better. Prints the held-out
downbeat F before and after, and the weights to paste into bars.py.
The melody's downbeat log-odds (``BarWeights.melodic_downbeat``) are left out of this fit: their trees were
fitted on these same tunes, so bench/fit_accent.py weighs them on a third draw.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pretty_midi  # noqa: E402

from bat.beats import tracking  # noqa: E402
from bat.beats.bars import MELODY_BARS, BarWeights, bar_hypotheses, downbeat_evidence, is_melody, melody_templates  # noqa: E402
from beats import corpus, f_measure, kind_of  # noqa: E402
from fit_levels import fit_expected_f  # noqa: E402
from tune_sample import converted, fitting_draws, performed  # noqa: E402

pretty_midi.pretty_midi.MAX_TICK = 1e10
warnings.filterwarnings("ignore")
LENGTHS = (2, 3, 4)
TERMS = ["length 2", "length 3", "length 4", "pickup on 1", "pickup on last", "fractional on 1", "fractional on last",
         "last on 1", "last on last", "density 2", "density 3", "density 4", "compound 2", "compound 3", "compound 4",
         "repetition 2", "repetition 3", "repetition 4"] + [f"downbeat {c}" for c in range(5)] + [f"half bar {c}" for c in range(5)]


def weights_of(vector: np.ndarray) -> BarWeights:
    """The melody weights a vector in ``TERMS``'s order stands for (linear in it: zero gives all-zero weights)."""
    per_length = lambda start: {length: float(vector[start + k]) for k, length in enumerate(LENGTHS)}  # noqa: E731
    return BarWeights(
        templates=melody_templates(vector[18:23], vector[23:28]),
        length_prior=per_length(0), repetition=per_length(15),
        pickup=(float(vector[3]), float(vector[4])), fractional_pickup=(float(vector[5]), float(vector[6])),
        last_note=(float(vector[7]), float(vector[8])), density=per_length(9), compound=per_length(12),
    )


def hypothesis_terms(evidence: np.ndarray, cues) -> np.ndarray:
    """(9, len(TERMS)): the terms each hypothesis's score is linear in, as ``bar_hypotheses`` scores them (with
    each weight alone), so that the fit and the tracker cannot disagree on what a weight means."""
    units = np.eye(len(TERMS))
    return np.stack([bar_hypotheses(evidence, cues, LENGTHS, weights=weights_of(unit)).scores for unit in units], axis=1)


def tune_rows(files: list[str], folder: Path, even_only: bool = False, truest: bool = True) -> list[tuple[str, np.ndarray, np.ndarray, object]]:
    """(kind, terms (9, T), downbeat F (9,), (evidence, cues) to score) per single-line tune, over the chosen beats
    and (``truest``, when they differ) the truest level's beats; each file humanized with its index as the seed."""
    rows = []
    for index, source in enumerate(files):
        if kind_of(source) not in ("folk song", "fiddle tune") or (even_only and index % 2):
            continue
        performance, song = performed(source, index, folder)
        activation = tracking.note_activation(song)
        levels = tracking.candidate_levels(song, activation)
        if not levels or not is_melody(song):
            continue
        trim = lambda times: times[times <= song.end_time] if (times <= song.end_time).sum() >= 4 else times  # noqa: E731
        chosen = trim(tracking.choose_level(levels).times)
        best = max((trim(level.times) for level in levels), key=lambda times: f_measure(performance.beats, times))
        differs = len(best) != len(chosen) or not np.allclose(best, chosen)
        for beats in [chosen] + ([best] if truest and differs else []):
            if len(beats) < 4:
                continue
            cues = tracking.song_bar_cues(song, activation, beats, tracking.DEFAULT_TRACKING)
            evidence = downbeat_evidence(song, beats)
            hypotheses = bar_hypotheses(evidence, cues, LENGTHS, melody=True)
            scores = np.array([f_measure(performance.downbeats, beats[(np.arange(len(beats)) - phase) % length == 0])
                               for length, phase in zip(hypotheses.lengths, hypotheses.phases)])
            rows.append((kind_of(source), hypothesis_terms(evidence, cues), scores, (evidence, cues)))
        print(f"\r{index + 1}/{len(files)} songs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def mean_f(rows, score) -> dict[str, str]:
    by_kind: dict[str, list[float]] = {}
    for kind, _, scores, scored in rows:
        by_kind.setdefault(kind, []).append(scores[int(np.argmax(score(*scored)))])
    return {kind: f"{np.mean(values):.3f} (n={len(values)})" for kind, values in sorted(by_kind.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--essen", type=int, nargs=2, default=(300, 600), help="Essen tunes in the two draws")
    parser.add_argument("--fiddle", type=int, nargs=2, default=(40, 80), help="tunes of each fiddle collection in the two draws")
    parser.add_argument("--lam", type=float, default=0.01)
    args = parser.parse_args()
    draws = fitting_draws(tuple(args.essen), tuple(args.fiddle))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = tune_rows(converted(draws["1"], folder / "1"), folder) + tune_rows(converted(draws["2"], folder / "2"), folder)
        rows += tune_rows(corpus(None, 0, folder, 0), folder, even_only=True)
        held = tune_rows(converted(draws["held"], folder / "held"), folder, truest=False)
    terms = [(kind, x, scores) for kind, x, scores, _ in rows]
    vector = np.round(fit_expected_f(terms, np.zeros(len(TERMS)), 0.3, 600, args.lam, balance_kinds=True, standardize=True), 2)
    weights = weights_of(vector)
    current = lambda evidence, cues: bar_hypotheses(evidence, cues, LENGTHS, melody=True).scores  # noqa: E731
    fitted = lambda evidence, cues: bar_hypotheses(evidence, cues, LENGTHS, weights=weights).scores  # noqa: E731
    print("training tunes, current weights:", mean_f(rows, current))
    print("training tunes, fitted weights: ", mean_f(rows, fitted))
    print("held-out sample, current weights:", mean_f(held, current))
    print("held-out sample, fitted weights: ", mean_f(held, fitted))
    fields = {name: getattr(weights, name) for name in ("length_prior", "repetition", "pickup", "fractional_pickup", "last_note", "density", "compound")}
    fields["melodic_downbeat"] = MELODY_BARS.melodic_downbeat  # kept: bench/fit_accent.py chooses it
    print("MELODY_BARS = BarWeights(")
    print(f"    templates=melody_templates(np.array({vector[18:23].tolist()}), np.array({vector[23:28].tolist()})),")
    for name, value in fields.items():
        print(f"    {name}={value},")
    print(")")


if __name__ == "__main__":
    main()
