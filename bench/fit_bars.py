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
from bat.beats.bars import BarWeights, bar_hypotheses, downbeat_evidence, is_melody, melody_templates  # noqa: E402
from bat.corpus.music21_corpus import ConvertConfig, convert_pieces  # noqa: E402
from bat.ingest.midi import load_midi  # noqa: E402
from beats import corpus, f_measure, kind_of  # noqa: E402
from tests.beats.performed import humanize  # noqa: E402
from tune_sample import sample_pieces  # noqa: E402

pretty_midi.pretty_midi.MAX_TICK = 1e10
warnings.filterwarnings("ignore")
LENGTHS = (2, 3, 4)
TERMS = ["length 2", "length 3", "length 4", "pickup on 1", "pickup on last", "fractional on 1", "fractional on last",
         "last on 1", "last on last", "density 2", "density 3", "density 4", "compound 2", "compound 3", "compound 4",
         "repetition 2", "repetition 3", "repetition 4"] + [f"downbeat {c}" for c in range(5)] + [f"half bar {c}" for c in range(5)]


def hypothesis_terms(evidence: np.ndarray, cues, beats: int) -> np.ndarray:
    """(9, len(TERMS)): for every (length, phase), in ``bar_hypotheses``'s order, the terms its score is linear in."""
    spread = evidence.std(axis=0)
    z = (evidence - evidence.mean(axis=0)) / np.where(spread > 1e-9, spread, 1.0)
    index = np.arange(beats)
    mean_repetition = np.mean([cues.repetition.get(length, 0.0) for length in LENGTHS])
    rows = []
    for k, length in enumerate(LENGTHS):
        for phase in range(length):
            position = (index - phase) % length
            at = np.array([z[position == p].mean(axis=0) if (position == p).any() else np.zeros(5) for p in range(length)])
            row = np.zeros(len(TERMS))
            row[k] = 1.0
            first, last = position[min(cues.first_beat, beats - 1)], position[min(cues.last_beat, beats - 1)]
            pickup = 5 if cues.fractional_pickup else 3
            row[pickup], row[pickup + 1] = first == 0, first == length - 1
            row[7], row[8] = (last == 0, last == length - 1) if cues.last_beat >= 0 else (0, 0)
            row[9 + k], row[12 + k] = cues.onset_density, float(cues.compound)
            row[15 + k] = cues.repetition.get(length, 0.0) - mean_repetition
            row[18:23] = at[0] - at[1:].mean(axis=0)
            if length == 4:
                row[23:28] = at[2] - (at[1] + at[3]) / 2
            rows.append(row)
    return np.array(rows)


def weights_of(vector: np.ndarray) -> BarWeights:
    r = lambda x: round(float(x), 2)  # noqa: E731
    per_length = lambda start: {length: r(vector[start + k]) for k, length in enumerate(LENGTHS)}  # noqa: E731
    return BarWeights(
        templates=melody_templates(np.round(vector[18:23], 2), np.round(vector[23:28], 2)),
        length_prior=per_length(0), repetition=per_length(15),
        pickup=(r(vector[3]), r(vector[4])), fractional_pickup=(r(vector[5]), r(vector[6])),
        last_note=(r(vector[7]), r(vector[8])), density=per_length(9), compound=per_length(12),
    )


def tune_rows(files: list[str], folder: Path, even_only: bool = False, truest: bool = True) -> list[tuple[str, np.ndarray, np.ndarray, object]]:
    """(kind, terms (9, T), downbeat F (9,), (evidence, cues) to score) per single-line tune, over the chosen beats
    and (``truest``, when they differ) the truest level's beats; each file humanized with its index as the seed."""
    rows = []
    for index, source in enumerate(files):
        if kind_of(source) not in ("folk song", "fiddle tune") or (even_only and index % 2):
            continue
        performance = humanize(source, seed=index)
        played = folder / f"played_{index}.mid"
        performance.midi.write(str(played))
        song = load_midi(played)
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
            rows.append((kind_of(source), hypothesis_terms(evidence, cues, len(beats)), scores, (evidence, cues)))
        print(f"\r{index + 1}/{len(files)} songs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def fit(rows, lam: float, temperature: float = 0.3, steps: int = 600) -> np.ndarray:
    import torch

    count = Counter(kind for kind, *_ in rows)
    terms = torch.tensor(np.stack([row[1] for row in rows]))
    scores = torch.tensor(np.stack([row[2] for row in rows]))
    weight = torch.tensor([1.0 / count[kind] / len(count) for kind, *_ in rows])
    scale = terms.reshape(-1, terms.shape[2]).std(0).clamp_min(1e-6)
    vector = torch.zeros(terms.shape[2], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([vector], lr=0.03)
    for _ in range(steps):
        optimizer.zero_grad()
        expected = (weight * (torch.softmax(terms / scale @ vector / temperature, 1) * scores).sum(1)).sum()
        (-expected + lam * (vector ** 2).sum()).backward()
        optimizer.step()
    return (vector / scale).detach().numpy()


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
    held_out = frozenset(piece.source for piece in sample_pieces(150, 25, 0))
    first = sample_pieces(args.essen[0], args.fiddle[0], 1, exclude=held_out)
    second = sample_pieces(args.essen[1], args.fiddle[1], 2, exclude=held_out | {piece.source for piece in first})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = []
        for name, pieces in (("first", first), ("second", second)):
            convert_pieces(pieces, folder / name, ConvertConfig())
            rows += tune_rows(corpus(folder / name, 0, folder, 0), folder)
        rows += tune_rows(corpus(None, 0, folder, 0), folder, even_only=True)
        convert_pieces(sample_pieces(150, 25, 0), folder / "held", ConvertConfig())
        held = tune_rows(corpus(folder / "held", 0, folder, 0), folder, truest=False)
    vector = fit(rows, args.lam)
    weights = weights_of(vector)
    current = lambda evidence, cues: bar_hypotheses(evidence, cues, LENGTHS, melody=True).scores  # noqa: E731
    fitted = lambda evidence, cues: bar_hypotheses(evidence, cues, LENGTHS, weights=weights).scores  # noqa: E731
    print("training tunes, current weights:", mean_f(rows, current))
    print("training tunes, fitted weights: ", mean_f(rows, fitted))
    print("held-out sample, current weights:", mean_f(held, current))
    print("held-out sample, fitted weights: ", mean_f(held, fitted))
    fields = {name: getattr(weights, name) for name in ("length_prior", "repetition", "pickup", "fractional_pickup", "last_note", "density", "compound")}
    print("MELODY_BARS = BarWeights(")
    print(f"    templates=melody_templates(np.array({np.round(vector[18:23], 2).tolist()}), np.array({np.round(vector[23:28], 2).tolist()})),")
    for name, value in fields.items():
        print(f"    {name}={value},")
    print(")")


if __name__ == "__main__":
    main()
