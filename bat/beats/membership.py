"""Which notes take part in which beat: an onset inside the beat, or a note sounding through it.

Stored as flat (beat, note) pairs sorted by beat (a CSR layout), because every feature is a per-beat
reduction over these pairs and numpy reduces flat arrays fast.

A tempo map's beats are exact, so a beat starts at its time. A tracked beat (a performance, audio) is only as
exact as the tracker and the player: a kick played 10 ms ahead of the tracked beat is on that beat, not at the end
of the one before, and a chord released 10 ms after it does not sound in it. So a tracked beat takes in the onsets
of the last ``EARLY_SHARE`` of the beat before it, at position 0, and a note is held into it only if it sounds past
its first ``EARLY_SHARE``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bat.beats.grid import BeatGrid
from bat.ingest.song import NoteArray

EARLY_SHARE = 0.125  # of the beat before a tracked beat: half a 16th, well short of any 16th or triplet on it


@dataclass(frozen=True)
class BeatNotes:
    """(beat, note) membership pairs, grouped by beat."""

    n_beats: int
    beat: np.ndarray  # int64, beat of each pair (sorted)
    note: np.ndarray  # int64, index into the NoteArray
    onset: np.ndarray  # bool, the note starts inside this beat (else it sounds through from before)
    position: np.ndarray  # float64, onset position in the beat in [0, 1); -1 for held notes
    indptr: np.ndarray  # int64 (n_beats + 1,), pairs of beat i are indptr[i]:indptr[i+1]

    def of_beat(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Note indices taking part in beat ``i`` and whether each has its onset there."""
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return self.note[lo:hi], self.onset[lo:hi]


def notes_in_beats(notes: NoteArray, grid: BeatGrid) -> BeatNotes:
    n_beats = len(grid)
    starts, ends = grid.times, grid.ends
    if len(notes) == 0 or n_beats == 0:
        empty = np.zeros(0, np.int64)
        return BeatNotes(n_beats, empty, empty, np.zeros(0, bool), np.zeros(0), np.zeros(n_beats + 1, np.int64))
    opens, holds = beat_reach(grid)
    first = np.clip(np.searchsorted(opens, notes.start, side="right") - 1, 0, n_beats - 1)
    last = np.clip(np.searchsorted(holds, notes.end, side="left") - 1, first, n_beats - 1)
    counts = last - first + 1
    note = np.repeat(np.arange(len(notes)), counts)
    offsets = np.cumsum(counts) - counts
    beat = first[note] + (np.arange(note.size) - offsets[note])
    order = np.argsort(beat, kind="stable")
    beat, note = beat[order], note[order]
    onset = beat == first[note]
    length = ends[beat] - starts[beat]
    position = np.where(onset, (notes.start[note] - starts[beat]) / np.where(length > 0, length, 1.0), -1.0)
    position = np.where(onset, np.clip(position, 0.0, 0.999999), -1.0)
    indptr = np.zeros(n_beats + 1, np.int64)
    np.cumsum(np.bincount(beat, minlength=n_beats), out=indptr[1:])
    return BeatNotes(n_beats, beat, note, onset, position, indptr)


def beat_reach(grid: BeatGrid) -> tuple[np.ndarray, np.ndarray]:
    """(from when each beat takes in onsets, after when a note still sounding is held into it): the beat's time
    twice, or for a tracked grid a little before and a little after it (module docstring)."""
    if grid.source == "tempo_map" or len(grid) < 2:
        return grid.times, grid.times
    before = np.diff(grid.times, prepend=grid.times[0] - (grid.times[1] - grid.times[0]))
    after = grid.ends - grid.times
    return grid.times - EARLY_SHARE * before, grid.times + EARLY_SHARE * after
