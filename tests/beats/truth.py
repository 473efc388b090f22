"""The true beats and downbeats of a quantized score, with partial bars read as a musician reads them.

music21 writes every incomplete bar of an ABC tune as a bar of its own meter: the pickup of a 6/8 jig
is a 1/8 bar, the bar cut by a repeat sign is a 5/8 bar (plus a 1/8 pickup after the sign), a final
half bar of a 2/4 reel is 3/8 or 7/16. pretty_midi's tempo-map grid (``bat.beats.grid.beat_grid``) then
beats those bars in eighths or sixteenths: a 5/8 bar holds five "beats" an eighth apart inside a jig whose
beat is the dotted quarter, and its 1/8 continuation starts a "bar" of its own. No listener hears that, and
no tracker can find it: in a 20-second fiddle tune those beats are a third of the truth.

``score_grid`` keeps pretty_midi's convention (the beat is the denominator's note, the dotted note in
compound meters, as for 6/8) for every full bar, and lets partial bars carry on the beat of the meter around
them: a bar cut short after a full one continues its beats (its start is a downbeat), a pickup before a full
one counts back from the next downbeat (its start is not). Full bars get exactly pretty_midi's beats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bat.beats.grid import beat_grid
from bat.beats.performance import quarter_positions
from bat.ingest.song import Song, TimeSignature


@dataclass
class Segment:
    """A stretch of one time signature, in quarter notes."""

    start: float
    end: float
    numerator: int
    denominator: int

    @property
    def bar(self) -> float:
        return self.numerator * 4.0 / self.denominator

    @property
    def beat(self) -> float:
        compound = self.numerator % 3 == 0 and self.numerator != 3
        return 4.0 / self.denominator * (3 if compound else 1)

    @property
    def bars(self) -> float:
        return (self.end - self.start) / self.bar


def segments(song: Song, signatures: list[TimeSignature]) -> list[Segment]:
    times = np.array([ts.time for ts in signatures] + [song.end_time])
    quarters = quarter_positions(song, times)
    return [Segment(float(quarters[k]), float(quarters[k + 1]), ts.numerator, ts.denominator)
            for k, ts in enumerate(signatures) if quarters[k + 1] > quarters[k] + 1e-9]


def partial(segments: list[Segment], k: int) -> bool:
    """One bar (or less) that is shorter than the bar of a neighbouring segment: a pickup or a cut bar."""
    here = segments[k]
    neighbours = [segments[j].bar for j in (k - 1, k + 1) if 0 <= j < len(segments)]
    return here.bars < 1.5 and bool(neighbours) and here.bar < max(neighbours) - 1e-9


def score_grid(song: Song) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(beats, downbeat mask, bar length in beats per beat) of a quantized song, seconds on its tempo map."""
    signatures = sorted(song.time_signatures, key=lambda ts: ts.time)
    if not signatures:
        grid = beat_grid(song)
        return grid.times, grid.downbeats, grid.beats_in_bar
    if signatures[0].time > 0:
        signatures = [TimeSignature(0.0, 4, 4), *signatures]
    parts = segments(song, signatures)
    is_partial = [partial(parts, k) for k in range(len(parts))]
    beats: list[float] = []
    downs: list[bool] = []
    lengths: list[float] = []
    for k, seg in enumerate(parts):
        reference, start, down_every = seg, seg.start, None
        if is_partial[k] and k > 0 and not is_partial[k - 1]:
            reference = parts[k - 1]  # a bar cut short: carry on, its start is a bar line
        elif is_partial[k] and k + 1 < len(parts) and not is_partial[k + 1]:
            reference = parts[k + 1]  # a pickup: count back from the next bar line
            n_back = int(np.floor((reference.start - seg.start) / reference.beat + 1e-9))
            start = reference.start - n_back * reference.beat
            down_every = 0  # no downbeat inside a pickup
        step = reference.beat
        per_bar = int(round(reference.bar / step)) or 1
        positions = np.arange(start, seg.end - 1e-9, step)
        for i, q in enumerate(positions):
            beats.append(float(q))
            downs.append(down_every is None and i % per_bar == 0)
            lengths.append(per_bar)
    order = np.argsort(beats, kind="stable")
    quarters = np.array(beats)[order]
    keep = np.concatenate([[True], np.diff(quarters) > 1e-6])
    change_times = np.append(song.tempo_times, song.end_time + 60.0)
    seconds = np.interp(quarters[keep], quarter_positions(song, change_times), change_times)
    return seconds, np.array(downs)[order][keep], np.array(lengths)[order][keep].astype(np.int64)
