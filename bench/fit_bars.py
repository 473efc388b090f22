"""Refit ``bat.beats.bars.MELODY_BARS``: the weights that place the bars over the beats of a single melody line.

    .venv/bin/python bench/fit_bars.py [--essen 300 600] [--fiddle 40 80] [--lam 0.03]

Training data, none of it in the benchmark's held-out tune sample (bench/tune_sample.py, seed 0): humanized
performances of Essen and fiddle tunes drawn at random in two draws (seeds 1 and 2, the second leaving out
the first; the first is bench/fit_levels.py's sample); single lines only (``is_melody``). For every tune, the
beats the tracker chooses, and over them every bar hypothesis: its terms (``hypothesis_terms``) and its
downbeat F-measure. The bars are placed over the chosen beats, so they are fitted there: fitted over the truest
candidate level's beats as well (and the demo corpus's tunes), the weights placed the held-out bars worse
(downbeat F of the held-out single lines, fiddle tunes 0.71 against 0.78, folk songs 0.85 in both).

The model is small on purpose: a template that contrasts the downbeat with the bar's other beats (shared by
all bar lengths), one for the third beat of a bar of four, per bar length the song-wide terms of
``BarWeights``, and per bar length and position where the first and last notes land, which mean different
things at different lengths: a tune's first note is the downbeat of a bar of two far more often than its
upbeat, but the upbeat of a bar of four at least as often as its downbeat; a reel's last onset falls on the
third beat of its bar of four, a folk song's on a downbeat (held-out downbeat F, fitted with one pair of weights
for all lengths: fiddle tunes 0.70, folk songs 0.83; per length and position: 0.79 and 0.85).
Fitted on standardised terms (L2 ``--lam``) to maximise the mean expected F of a softmax over each tune's
hypotheses (temperature 0.3, Adam), folk and fiddle tunes weighing equally. With per-position templates of every
length and more melodic cues (leaps, agogic accents, rests, ties, pitch repetition) it fitted the training
tunes better and the held-out ones no better. Prints the held-out downbeat F before and after, and the weights
to paste into bars.py.
The melody's downbeat log-odds (``BarWeights.melodic_downbeat``) enter the fit as a fixed term: their trees were
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
from beats import f_measure, kind_of  # noqa: E402
from fit_levels import fit_expected_f  # noqa: E402
from tune_sample import converted, fitting_draws, performed  # noqa: E402

pretty_midi.pretty_midi.MAX_TICK = 1e10
warnings.filterwarnings("ignore")
LENGTHS = (2, 3, 4)
ENDS = ("first", "fractional first", "last")  # where the first note (on a beat, a fraction early) and the last land
TERMS = ([f"length {length}" for length in LENGTHS]
         + [f"{end} {length}:{position + 1}" for end in ENDS for length in LENGTHS for position in range(length)]
         + [f"{name} {length}" for name in ("density", "compound", "repetition") for length in LENGTHS]
         + [f"{template} {c}" for template in ("downbeat", "half bar") for c in range(5)])


def weights_of(vector: np.ndarray, melodic_downbeat: float = 0.0) -> BarWeights:
    """The melody weights a vector in ``TERMS``'s order stands for (linear in it: zero gives all-zero weights),
    with ``melodic_downbeat`` beside them."""
    at = {name: float(value) for name, value in zip(TERMS, vector)}
    per_length = lambda name: {length: at[f"{name} {length}"] for length in LENGTHS}  # noqa: E731
    by_position = lambda end: {length: np.array([at[f"{end} {length}:{p + 1}"] for p in range(length)]) for length in LENGTHS}  # noqa: E731
    template = lambda name: np.array([at[f"{name} {c}"] for c in range(5)])  # noqa: E731
    return BarWeights(
        templates=melody_templates(template("downbeat"), template("half bar")),
        length_prior=per_length("length"), repetition=per_length("repetition"),
        first_note=by_position("first"), fractional_first_note=by_position("fractional first"), last_note=by_position("last"),
        density=per_length("density"), compound=per_length("compound"), melodic_downbeat=melodic_downbeat,
    )


def hypothesis_terms(evidence: np.ndarray, cues) -> np.ndarray:
    """(9, len(TERMS)): the terms each hypothesis's score is linear in, as ``bar_hypotheses`` scores them (with
    each weight alone), so that the fit and the tracker cannot disagree on what a weight means."""
    units = np.eye(len(TERMS))
    return np.stack([bar_hypotheses(evidence, cues, LENGTHS, weights=weights_of(unit)).scores for unit in units], axis=1)


def tune_rows(files: list[str], folder: Path) -> list[tuple]:
    """(kind, terms (9, T), downbeat F (9,), the melody's downbeat term (9,), (evidence, cues) to score) per
    single-line tune, over the beats the tracker chooses; each file humanized with its index as the seed."""
    rows = []
    for index, source in enumerate(files):
        if kind_of(source) not in ("folk song", "fiddle tune"):
            continue
        performance, song = performed(source, index, folder)
        activation = tracking.note_activation(song)
        levels = tracking.candidate_levels(song, activation)
        if not levels or not is_melody(song):
            continue
        beats = tracking.choose_level(levels, melody=True).times
        beats = beats[beats <= song.end_time] if (beats <= song.end_time).sum() >= 4 else beats
        if len(beats) >= 4:
            cues = tracking.song_bar_cues(song, activation, beats, tracking.DEFAULT_TRACKING, melody=True)
            evidence = downbeat_evidence(song, beats)
            hypotheses = bar_hypotheses(evidence, cues, LENGTHS, melody=True)
            scores = np.array([f_measure(performance.downbeats, beats[(np.arange(len(beats)) - phase) % length == 0])
                               for length, phase in zip(hypotheses.lengths, hypotheses.phases)])
            melodic = bar_hypotheses(evidence, cues, LENGTHS, weights=weights_of(np.zeros(len(TERMS)), MELODY_BARS.melodic_downbeat))
            rows.append((kind_of(source), hypothesis_terms(evidence, cues), scores, melodic.scores, (evidence, cues)))
        print(f"\r{index + 1}/{len(files)} songs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def mean_f(rows, score) -> dict[str, str]:
    by_kind: dict[str, list[float]] = {}
    for kind, _, scores, _, scored in rows:
        by_kind.setdefault(kind, []).append(scores[int(np.argmax(score(*scored)))])
    return {kind: f"{np.mean(values):.3f} (n={len(values)})" for kind, values in sorted(by_kind.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--essen", type=int, nargs=2, default=(300, 600), help="Essen tunes in the two draws")
    parser.add_argument("--fiddle", type=int, nargs=2, default=(40, 80), help="tunes of each fiddle collection in the two draws")
    parser.add_argument("--lam", type=float, default=0.03)
    args = parser.parse_args()
    draws = fitting_draws(tuple(args.essen), tuple(args.fiddle))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = tune_rows(converted(draws["1"], folder / "1"), folder) + tune_rows(converted(draws["2"], folder / "2"), folder)
        held = tune_rows(converted(draws["held"], folder / "held"), folder)
    terms = [(kind, x, scores) for kind, x, scores, _, _ in rows]
    offsets = [melodic for *_, melodic, _ in rows]
    vector = fit_expected_f(terms, np.zeros(len(TERMS)), 0.3, 600, args.lam, balance_kinds=True, standardize=True, offsets=offsets)
    rounded = np.round(vector, 2)
    weights = weights_of(rounded, MELODY_BARS.melodic_downbeat)
    current = lambda evidence, cues: bar_hypotheses(evidence, cues, LENGTHS, melody=True).scores  # noqa: E731
    fitted = lambda evidence, cues: bar_hypotheses(evidence, cues, LENGTHS, weights=weights).scores  # noqa: E731
    print("training tunes, current weights:", mean_f(rows, current))
    print("training tunes, fitted weights: ", mean_f(rows, fitted))
    print("held-out sample, current weights:", mean_f(held, current))
    print("held-out sample, fitted weights: ", mean_f(held, fitted))
    listed = lambda by_length: "{" + ", ".join(f"{length}: {value}" for length, value in by_length.items()) + "}"  # noqa: E731
    positions = lambda by_length: "{" + ", ".join(f"{length}: np.array({value.tolist()})" for length, value in by_length.items()) + "}"  # noqa: E731
    print("MELODY_BARS = BarWeights(")
    template = lambda name: [float(rounded[TERMS.index(f"{name} {c}")]) for c in range(5)]  # noqa: E731
    print(f"    templates=melody_templates(np.array({template('downbeat')}), np.array({template('half bar')})),")
    for name in ("length_prior", "repetition"):
        print(f"    {name}={listed(getattr(weights, name))},")
    for name in ("first_note", "fractional_first_note", "last_note"):
        print(f"    {name}={positions(getattr(weights, name))},")
    for name in ("density", "compound"):
        print(f"    {name}={listed(getattr(weights, name))},")
    print(f"    melodic_downbeat={MELODY_BARS.melodic_downbeat},  # kept: bench/fit_accent.py chooses it")
    print(")")


if __name__ == "__main__":
    main()
