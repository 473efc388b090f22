"""Melodic accent: how likely each note of a single melody line is to fall on a beat, or on a downbeat, from the
melody alone.

A fiddle tune in running eighths gives the onset activation nothing to lock to: every note is as loud and as
long as the next, so madmom's DBN settles on any phase (a jig tracked an eighth early scores F 0) or on a level
at 3:2 or 4:3 to the beat, which the tempo preference then picks. Yet the melody says where the beat is:
a leap lands on it, a step leaves it, the long note of a long-short pair sits on it, some scale degrees fall on
it more than others. ``ACCENT_FEATURES`` measures these around each note (its neighbours' durations and
intervals too), and gradient-boosted trees fitted on humanized performances of ~1,260 corpus tunes
(bench/fit_accent.py; held out: the benchmark's tune sample) turn them into a log-odds of "on a beat". The
tracker scales each note's onset weight by it (``accent_weights``), which is how a listener hears the beat in a
plain melody. A second set of trees, fitted the same way, gives the log-odds of "on a downbeat", which the bars
of a melody weigh (``downbeat_log_odds``). Only for single lines (``bars.is_melody``): the trees never saw
chords, voices or drums.

The trees ship with the package (``melodic_accent.npz``) and are evaluated here with numpy, so that nothing
beyond numpy is needed to track beats.

Legend: ``N`` notes of the song, ``L`` notes of the line (one per onset), ``T`` trees, ``M`` nodes per tree,
``B`` beats.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from bat.ingest.song import NoteArray

MODEL_PATH = Path(__file__).with_name("melodic_accent.npz")
TARGETS = ("beat", "downbeat")  # what each set of trees in it predicts of a note
CHORD_SPREAD = 0.03  # seconds: onsets closer than this are one onset of the line
ACCENT_FEATURES = (
    # durations: log2 of the inter-onset interval over the tune's median, of this note and its neighbours
    "dur", "dur_prev", "dur_prev2", "dur_next", "dur_next2", "dur_change",
    # intervals (semitones / 12): into this note, out of it, and the ones around them
    "step_in", "size_in", "step_out", "size_out", "step_in_prev", "step_in_prev2", "step_out_next",
    "repeat_in", "repeat_out", "peak", "valley", "leap_in",
    # register: height against the 9 notes around, lowest or highest of them
    "height", "lowest", "highest",
    # scale degree against the last note (the tonic of nearly every folk tune)
    *(f"degree_{semitones}" for semitones in range(12)),
    # the same pitch 2, 3 or 4 notes back: figures that repeat by the beat
    "same_2_back", "same_3_back", "same_4_back",
)


@dataclass(frozen=True)
class MelodyLine:
    """A song's notes as one line: one note per onset (the highest of a chord), and each note's onset in it."""

    start: np.ndarray  # (L,) seconds
    end: np.ndarray  # (L,)
    pitch: np.ndarray  # (L,) float
    onset_of_note: np.ndarray  # (N,) index into the line, in the order of ``NoteArray`` (sorted by onset)


def melody_line(notes: NoteArray) -> MelodyLine:
    order = np.argsort(notes.start, kind="stable")
    start = notes.start[order]
    onset = np.concatenate([[0], np.cumsum(np.diff(start) > CHORD_SPREAD)]).astype(np.int64)
    n_onsets = int(onset[-1]) + 1
    pitch = np.full(n_onsets, -1.0)
    np.maximum.at(pitch, onset, notes.pitch[order].astype(np.float64))
    first = np.searchsorted(onset, np.arange(n_onsets))
    end = np.zeros(n_onsets)
    np.maximum.at(end, onset, notes.end[order])
    onset_of_note = np.empty(len(notes), np.int64)
    onset_of_note[order] = onset
    return MelodyLine(start[first], end, pitch, onset_of_note)


def _shift(values: np.ndarray, by: int) -> np.ndarray:
    """``values[i - by]`` at i, 0 where that falls outside: the note ``by`` before (``by`` < 0: after)."""
    shifted = np.zeros_like(values)
    if by > 0:
        shifted[by:] = values[:-by]
    elif by < 0:
        shifted[:by] = values[-by:]
    else:
        shifted[:] = values
    return shifted


def accent_features(line: MelodyLine) -> np.ndarray:
    """(L, len(ACCENT_FEATURES)) what the melody says around each note, in ``ACCENT_FEATURES`` order."""
    start, pitch = line.start, line.pitch
    n = len(start)
    ioi = np.diff(start, append=max(line.end[-1], start[-1] + 0.05))
    typical = float(np.median(ioi[:-1])) if n > 2 else float(ioi[0])
    dur = np.clip(np.log2(np.maximum(ioi, 1e-3) / max(typical, 1e-3)), -2, 2)
    interval_in = np.concatenate([[0.0], np.diff(pitch)])
    interval_out = _shift(interval_in, -1)
    step_in, step_out = np.clip(interval_in, -12, 12) / 12, np.clip(interval_out, -12, 12) / 12
    around = np.lib.stride_tricks.sliding_window_view(np.pad(pitch, 4, mode="edge"), 9)
    degree = ((pitch - pitch[-1]) % 12).astype(np.int64)
    columns = [
        dur, _shift(dur, 1), _shift(dur, 2), _shift(dur, -1), _shift(dur, -2), dur - _shift(dur, 1),
        step_in, np.abs(step_in), step_out, np.abs(step_out), _shift(step_in, 1), _shift(step_in, 2), _shift(step_out, -1),
        interval_in == 0, interval_out == 0, (interval_in > 0) & (interval_out < 0), (interval_in < 0) & (interval_out > 0),
        np.abs(interval_in) >= 5,
        (pitch - around.mean(axis=1)) / 12, pitch == around.min(axis=1), pitch == around.max(axis=1),
        *(degree == semitones for semitones in range(12)),
        *(np.concatenate([np.zeros(back), pitch[back:] == pitch[:-back]]) if n > back else np.zeros(n) for back in (2, 3, 4)),
    ]
    return np.stack([np.asarray(column, np.float64) for column in columns], axis=1)


@dataclass(frozen=True)
class AccentTrees:
    """Gradient-boosted regression trees as flat arrays: node m of tree t tests ``feature[t, m] <= threshold[t, m]``
    and goes ``left`` or ``right``; a leaf holds ``value``. The log-odds is ``baseline`` plus one leaf per tree."""

    feature: np.ndarray  # (T, M) int
    threshold: np.ndarray  # (T, M) float
    left: np.ndarray  # (T, M) int
    right: np.ndarray  # (T, M) int
    value: np.ndarray  # (T, M) float
    leaf: np.ndarray  # (T, M) bool
    baseline: float

    def log_odds(self, features: np.ndarray, chunk: int = 20_000) -> np.ndarray:
        """(L,) the trees' sum for each row of ``features`` (L, F), ``chunk`` rows at a time (memory: T x chunk)."""
        if len(features) > chunk:
            return np.concatenate([self.log_odds(features[start:start + chunk], chunk) for start in range(0, len(features), chunk)])
        n_trees = self.feature.shape[0]
        tree = np.arange(n_trees)[:, None]
        row = np.arange(features.shape[0])[None, :]
        node = np.zeros((n_trees, features.shape[0]), np.int64)
        while True:
            at_leaf = self.leaf[tree, node]
            if at_leaf.all():
                break
            goes_left = features[row, self.feature[tree, node]] <= self.threshold[tree, node]
            node = np.where(at_leaf, node, np.where(goes_left, self.left[tree, node], self.right[tree, node]))
        return self.baseline + self.value[tree, node].sum(axis=0)



TREE_ARRAYS = ("feature", "threshold", "left", "right", "value", "leaf")


def save_trees(path: Path, trees: dict[str, AccentTrees]) -> None:
    """Write one set of trees per target of ``TARGETS``, with the feature names they were fitted on."""
    arrays = {f"{target}_{name}": getattr(trees[target], name) for target in TARGETS for name in TREE_ARRAYS}
    baselines = {f"{target}_baseline": np.array(trees[target].baseline) for target in TARGETS}
    np.savez_compressed(path, features=np.array(ACCENT_FEATURES), **arrays, **baselines)


@cache
def accent_trees(target: str = "beat", path: Path = MODEL_PATH) -> AccentTrees:
    with np.load(path) as stored:
        if tuple(stored["features"].tolist()) != ACCENT_FEATURES:
            raise ValueError(f"{path} was fitted on other features than ACCENT_FEATURES: refit it with bench/fit_accent.py")
        array = lambda name: stored[f"{target}_{name}"]  # noqa: E731
        return AccentTrees(
            feature=array("feature").astype(np.int64), threshold=array("threshold"), left=array("left").astype(np.int64),
            right=array("right").astype(np.int64), value=array("value"), leaf=array("leaf"), baseline=float(array("baseline")),
        )


def note_log_odds(notes: NoteArray, target: str = "beat") -> np.ndarray:
    """(N,) log-odds that each note falls on a beat (``target`` "beat") or a downbeat; a chord's notes share
    their onset's."""
    if len(notes) == 0:
        return np.zeros(0)
    line = melody_line(notes)
    return accent_trees(target).log_odds(accent_features(line))[line.onset_of_note]


def accent_weights(notes: NoteArray, strength: float) -> np.ndarray:
    """(N,) factors for the notes' onset weights: exp(``strength`` x log-odds against the tune's median), the
    log-odds clipped to ±3 so that no single note dominates the activation."""
    if len(notes) < 8 or strength == 0:
        return np.ones(len(notes))
    log_odds = note_log_odds(notes)
    return np.exp(strength * np.clip(log_odds - np.median(log_odds), -3.0, 3.0))


def downbeat_log_odds(notes: NoteArray, beats: np.ndarray) -> np.ndarray:
    """(B,) for each beat, the downbeat log-odds of the note on it (within a fifth of a beat); a beat without
    a note gets the tune's lowest: a silent beat is rarely where a bar starts."""
    if len(notes) < 8 or len(beats) < 2:
        return np.zeros(len(beats))
    line = melody_line(notes)
    if len(line.start) < 2:
        return np.zeros(len(beats))
    log_odds = accent_trees("downbeat").log_odds(accent_features(line))
    period = np.diff(beats, append=beats[-1] + (beats[-1] - beats[-2]))
    nearest = np.clip(np.searchsorted(line.start, beats), 1, len(line.start) - 1)
    nearest = np.where(np.abs(line.start[nearest - 1] - beats) < np.abs(line.start[nearest] - beats), nearest - 1, nearest)
    on_beat = np.abs(line.start[nearest] - beats) <= 0.2 * period
    return np.where(on_beat, log_odds[nearest], log_odds.min())
