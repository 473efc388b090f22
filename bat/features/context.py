"""Per-beat aggregates shared by the feature groups, computed once per song, all vectorized.

Every feature thinks relatively (intervals above the bass, motion between beats), so what is computed here
is mostly the bass, the pitch-class set, the skyline melody and onset groups of each beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from bat.beats.grid import BeatGrid
from bat.beats.membership import BeatNotes, notes_in_beats
from bat.ingest.song import NoteArray, Song

POPCOUNT_12 = np.array([bin(m).count("1") for m in range(4096)])  # distinct pitch classes of a 12-bit mask
ONSET_GROUP_GAP = 0.035  # seconds: onsets closer than this chain into one group (a chord or a strum)


def segment_reduce(ufunc: np.ufunc, values: np.ndarray, indptr: np.ndarray, empty) -> np.ndarray:
    """``ufunc`` over each segment ``values[indptr[i]:indptr[i+1]]``; ``empty`` where a segment is empty."""
    n = len(indptr) - 1
    out = np.full(n, empty, dtype=np.result_type(values.dtype, np.min_scalar_type(empty)))
    nonempty = indptr[1:] > indptr[:-1]
    if values.size and nonempty.any():
        out[nonempty] = ufunc.reduceat(values, indptr[:-1][nonempty])
    return out


def segment_count(mask: np.ndarray, beat: np.ndarray, n_beats: int) -> np.ndarray:
    """How many pairs satisfy ``mask`` in each beat."""
    return np.bincount(beat[mask], minlength=n_beats)


@dataclass
class BeatContext:
    """A song on its grid, with the per-beat aggregates features read."""

    song: Song
    grid: BeatGrid

    @property
    def n(self) -> int:
        return len(self.grid)

    @cached_property
    def pitched(self) -> BeatNotes:
        return notes_in_beats(self.song.notes, self.grid)

    @cached_property
    def drums(self) -> BeatNotes:
        return notes_in_beats(self.song.drums, self.grid)

    # --- harmony -------------------------------------------------------------------------------------------
    @cached_property
    def pair_pitch(self) -> np.ndarray:
        return self.song.notes.pitch[self.pitched.note].astype(np.int64)

    @cached_property
    def bass(self) -> np.ndarray:
        """Lowest sounding pitch per beat, -1 if nothing sounds."""
        low = segment_reduce(np.minimum, self.pair_pitch, self.pitched.indptr, 1000)
        return np.where(low == 1000, -1, low).astype(np.int64)

    @cached_property
    def pcmask(self) -> np.ndarray:
        """12-bit mask of sounding pitch classes (bit k: pitch class k)."""
        bits = (1 << (self.pair_pitch % 12)).astype(np.int64)
        return segment_reduce(np.bitwise_or, bits, self.pitched.indptr, 0).astype(np.int64)

    @cached_property
    def has_bass(self) -> np.ndarray:
        return self.bass >= 0

    @cached_property
    def relmask(self) -> np.ndarray:
        """Pitch-class set rotated so the bass is pitch class 0 (bit k: interval k above the bass)."""
        shift = np.where(self.has_bass, self.bass % 12, 0)
        mask = self.pcmask
        return ((mask >> shift) | (mask << (12 - shift))) & 0xFFF

    @cached_property
    def octave_doubling(self) -> np.ndarray:
        """Another note (above the bass) has the bass's pitch class."""
        pairs = self.pitched
        bass_of_pair = self.bass[pairs.beat]
        doubled = (self.pair_pitch > bass_of_pair) & ((self.pair_pitch - bass_of_pair) % 12 == 0)
        return segment_count(doubled, pairs.beat, self.n) > 0

    # --- onsets --------------------------------------------------------------------------------------------
    @cached_property
    def onset_pairs(self) -> np.ndarray:
        return np.flatnonzero(self.pitched.onset)

    @cached_property
    def n_onsets(self) -> np.ndarray:
        return segment_count(self.pitched.onset, self.pitched.beat, self.n)

    @cached_property
    def held(self) -> np.ndarray:
        return segment_count(~self.pitched.onset, self.pitched.beat, self.n) > 0

    @cached_property
    def onset_group(self) -> np.ndarray:
        """Group id of every pitched note: onsets chained closer than ONSET_GROUP_GAP (chords, strums)."""
        start = self.song.notes.start
        if start.size == 0:
            return np.zeros(0, np.int64)
        return np.concatenate([[0], np.cumsum(np.diff(start) > ONSET_GROUP_GAP)])

    @cached_property
    def melody_notes(self) -> np.ndarray:
        """Skyline melody: the top note of every onset group, as note indices in time order."""
        group = self.onset_group
        if group.size == 0:
            return np.zeros(0, np.int64)
        order = np.lexsort((self.song.notes.pitch, group))
        last_of_group = np.flatnonzero(np.append(group[order][1:] != group[order][:-1], True))
        return np.sort(order[last_of_group])

    @cached_property
    def note_onset_beat(self) -> np.ndarray:
        """Beat in which each pitched note starts (-1 if the song has no beats)."""
        pairs = self.pitched
        out = np.full(len(self.song.notes), -1, np.int64)
        out[pairs.note[pairs.onset]] = pairs.beat[pairs.onset]
        return out

    @cached_property
    def note_position(self) -> np.ndarray:
        pairs = self.pitched
        out = np.zeros(len(self.song.notes))
        out[pairs.note[pairs.onset]] = pairs.position[pairs.onset]
        return out

    @cached_property
    def melody_beat(self) -> np.ndarray:
        return self.note_onset_beat[self.melody_notes]

    @cached_property
    def melody_count(self) -> np.ndarray:
        beats = self.melody_beat
        return np.bincount(beats[beats >= 0], minlength=self.n)

    @cached_property
    def melody_first_last(self) -> tuple[np.ndarray, np.ndarray]:
        """Pitch of the first and last melody onset in each beat (-1 where none)."""
        beats, notes = self.melody_beat, self.melody_notes
        keep = beats >= 0
        beats, pitches = beats[keep], self.song.notes.pitch[notes[keep]].astype(np.int64)
        first, last = np.full(self.n, -1, np.int64), np.full(self.n, -1, np.int64)
        if beats.size:
            starts = np.flatnonzero(np.append(True, beats[1:] != beats[:-1]))
            ends = np.append(starts[1:], beats.size) - 1
            first[beats[starts]] = pitches[starts]
            last[beats[ends]] = pitches[ends]
        return first, last

    @cached_property
    def song_velocity_stats(self) -> tuple[float, float]:
        velocity = self.song.notes.velocity
        if velocity.size == 0:
            return 0.0, 0.0
        return float(velocity.mean()), float(velocity.std())

    def beats_shifted(self, values: np.ndarray, by: int, fill) -> np.ndarray:
        """``values`` of beat i - by at position i (the previous beat for by=1)."""
        out = np.full_like(values, fill)
        if by < len(values):
            out[by:] = values[: len(values) - by]
        return out


def make_context(song: Song, grid: BeatGrid) -> BeatContext:
    return BeatContext(song=song, grid=grid)


def group_sizes(group: np.ndarray) -> np.ndarray:
    return np.bincount(group) if group.size else np.zeros(0, np.int64)


__all__ = ["BeatContext", "NoteArray", "group_sizes", "make_context", "segment_count", "segment_reduce"]
