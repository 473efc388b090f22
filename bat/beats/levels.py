"""Which metrical level is the beat: decode every plausible level with madmom's DBN, then choose by evidence.

madmom alone locks to half or double the beat, to the dotted-quarter level of music in simple meter, or
to a level at 3:2 to the beat (the quarter notes of a jig in running eighths, where onsets alone barely tell
6/8 from 3/4: a jig's rhythm repeats from dotted quarter to dotted quarter, not from quarter to quarter).
So every plausible level is decoded on its own (each in a narrow tempo window, so the DBN cannot jump
between levels) and ``choose_level`` picks one by musical evidence: onsets on the beats and weaker ones
between them, a tempo preference, and whether bars group the beats coherently (features the tracker adds
from ``bat.beats.bars``: the meter and the beat are chosen together, as a listener does).

Legend: ``F`` frames (``fps`` a second), ``B`` beats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Level:
    """One metrical level: its beats and the evidence that it is the beat."""

    times: np.ndarray  # (B,) seconds
    bpm: float  # median tempo
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


def decode_beats(activation: np.ndarray, min_bpm: float, max_bpm: float, fps: int, num_tempi: int) -> np.ndarray:
    """madmom's DBN beat tracker over ``activation`` (frames at ``fps``) within a tempo range."""
    from madmom.features.beats import DBNBeatTrackingProcessor

    dbn = DBNBeatTrackingProcessor(min_bpm=min_bpm, max_bpm=max_bpm, num_tempi=num_tempi, fps=fps)
    return np.asarray(dbn(dbn_input(activation)), np.float64)


def dbn_input(activation: np.ndarray) -> np.ndarray:
    """madmom's observation model takes log(p) and log(1 - p): keep the activation strictly inside (0, 1)."""
    return np.clip(activation, 1e-3, 1.0 - 1e-3).astype(np.float64)


def window_centers(min_bpm: float, max_bpm: float, window: float, step: float) -> list[float]:
    """Centres of overlapping tempo windows (``window``² wide, ``step`` apart) that cover min..max bpm."""
    centers, center = [], min_bpm * window
    while center / window < max_bpm:
        centers.append(center)
        center *= step
    return centers


def unique_levels(decoded: list[tuple[float, np.ndarray]]) -> list[Level]:
    """One level per distinct tempo from (window centre, beats) pairs, sorted by tempo.

    Where two windows find the same level, the one whose tempo sits nearest its window's centre is kept:
    near an edge, drift pushes the DBN to another level.
    """
    found = []
    for center, times in decoded:
        if len(times) >= 4:
            level = Level(times, 60.0 / float(np.median(np.diff(times))))
            found.append((abs(np.log(level.bpm / center)), level))
    unique: list[Level] = []
    for _, level in sorted(found, key=lambda item: item[0]):
        if all(abs(np.log(level.bpm / other.bpm)) > np.log(1.12) for other in unique):
            unique.append(level)
    return sorted(unique, key=lambda lv: lv.bpm)


def peaks_at(activation: np.ndarray, times: np.ndarray, fps: int, reach: int = 4) -> np.ndarray:
    """Largest activation within ±``reach`` frames of each time (onsets are jittered around the grid)."""
    index = np.round(np.asarray(times) * fps).astype(np.int64)
    padded = np.concatenate([np.zeros(reach), activation, np.zeros(reach + 1)])
    windows = np.clip(index[:, None] + np.arange(2 * reach + 1)[None, :], 0, padded.size - 1)
    return padded[windows].max(axis=1)


def level_features(activation: np.ndarray, times: np.ndarray, fps: int, prior_bpm: float) -> dict[str, float]:
    """How the onsets sit on and between a level's beats: its metrical profile in twelfths of a beat."""
    strength = peaks_at(activation, times, fps)  # (B,)
    span = np.diff(times)
    profile = np.array([peaks_at(activation, times[:-1] + span * k / 12, fps).mean() for k in range(12)])
    bpm = 60.0 / float(np.median(span))
    return {
        "log_tempo": float(np.log2(bpm / prior_bpm)),
        "on": float(profile[0]),
        "fill": float((strength > 0.3).mean()),
        "half": float(profile[6]),
        "thirds": float((profile[4] + profile[8]) / 2),
        "quarters": float((profile[3] + profile[9]) / 2),
        "alt2": _alternation(strength, 2),
        "alt3": _alternation(strength, 3),
        "steady": float(np.std(np.diff(np.log(span))) if span.size > 2 else 0.0),
    }


def _alternation(strength: np.ndarray, period: int) -> float:
    """How much stronger the strongest phase of every ``period``-th beat is than the others (0 = equal)."""
    if strength.size < 2 * period:
        return 0.0
    means = np.array([strength[p::period].mean() for p in range(period)])
    best = means.max()
    return float((best - np.delete(means, means.argmax()).mean()) / max(best, 1e-9))


def choice_values(levels: list[Level]) -> list[dict[str, float]]:
    """Each level's features plus those relative to the other candidates: what ``LEVEL_WEIGHTS`` weighs."""
    strongest = max(level.features["on"] for level in levels)
    values = []
    for level in levels:
        f = level.features
        values.append(dict(
            f, log_tempo_sq=f["log_tempo"] ** 2, on_rel=f["on"] / max(strongest, 1e-9),
            sub_rel=max(f["half"], f["thirds"]) / max(f["on"], 1e-3),
        ))
    return values


# Weights of the level features for anything but a single melody line (chords, voices, drums), fitted (a
# softmax over each song's candidate levels, maximising the expected beat F-measure, then scaled so that the
# softmax's share is a calibrated confidence) on humanized performances of 420 folk and fiddle tunes drawn at
# random from the music21 corpus (bench/tune_sample.py, seed 1), the even-numbered demo-corpus files and 10
# pop files. Held out: the benchmark's own tune sample (seed 0) and the odd-numbered demo-corpus files.
# bench/fit_levels.py refits them. Tried and left out (no gain on held-out files): onsets per beat,
# beat/subdivision contrast, onsets and long notes on the beats, local autocorrelation at the period, melodic
# accents (contour turns, leaps) on the beats, and candidates shifted by half a beat.
LEVEL_WEIGHTS = {
    "log_tempo_sq": -1.73,  # tempo preference around prior_bpm...
    "log_tempo": 1.97,  # ...with a lean to the faster side
    "on": 2.7,  # strong onsets on the beats
    "fill": -0.98,  # share of beats with an onset: negative next to on and on_rel, which carry the same evidence
    "on_rel": 5.53,  # beats as strong as those of the strongest level
    "half": -2.63,  # subdivisions weaker than the beats: else the level is too slow
    "thirds": 0.77,  # (a jig's dotted-quarter beat has strong thirds: no penalty)
    "quarters": -2.3,
    "sub_rel": 2.71,  # (with half, thirds, quarters) the strongest subdivision relative to the beat
    "alt2": 1.3,  # strong and weak beats alternate: a metre to group them in
    "alt3": 1.29,
    "steady": -5.75,  # erratic beat periods: the DBN was fighting the music
    "bar_fit": -0.52,  # (with bar_share) bars group the beats coherently: one bar hypothesis clearly ahead
    "bar_share": 2.49,
    "rep_best": 2.93,  # the rhythm repeats bar after bar
    "rep_beat": 3.19,  # ...and beat after beat: a jig's dotted quarters do, its quarter-note pairs do not
}


# The same features weighed for a single melody line (``bars.is_melody``), whose activation carries its melodic
# accent (``bat.beats.accent``): fitted as above on the single lines only, folk and fiddle tunes weighing alike.
# With the accent, the texture weights took a plain tune's half notes for its beat (written 4/4, held-out F 0.94
# against 0.98); a refit of one set for all kinds cost pop 0.03 and polyphony 0.11 of beat F.
MELODY_LEVEL_WEIGHTS = {
    "log_tempo_sq": -2.11,
    "log_tempo": 1.46,
    "on": 1.34,
    "fill": -1.39,
    "on_rel": 3.96,
    "half": -1.68,
    "thirds": 0.66,
    "quarters": -1.58,
    "sub_rel": 0.13,
    "alt2": -0.05,
    "alt3": -1.14,
    "steady": -5.54,
    "bar_fit": 0.16,
    "bar_share": 0.23,
    "rep_best": 1.19,
    "rep_beat": 3.74,
}


def choose_level(levels: list[Level], melody: bool = False) -> Level:
    """The level a listener would tap: ``LEVEL_WEIGHTS`` (``MELODY_LEVEL_WEIGHTS`` for a single line whose
    activation carries its melodic accent) over each level's evidence, best score wins."""
    weights = MELODY_LEVEL_WEIGHTS if melody else LEVEL_WEIGHTS
    for level, values in zip(levels, choice_values(levels)):
        level.score = float(sum(weight * values[name] for name, weight in weights.items()))
    return max(levels, key=lambda level: level.score)


def level_confidence(levels: list[Level], chosen: Level) -> float:
    """Softmax share of the chosen level among the candidates: 1 when no other level is a close call."""
    scores = np.array([level.score for level in levels])
    weights = np.exp(scores - scores.max())
    return float(np.exp(chosen.score - scores.max()) / weights.sum())
