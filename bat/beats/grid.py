"""The beat and downbeat grid of a quantized MIDI file, read from its tempo and meter maps.

pretty_midi's ``get_beats``/``get_downbeats`` are the reference semantics (a test compares them over the
demo corpus); this is the same walk over plain floats, with a closed form when neither tempo nor meter
changes. Compound meters (6/8, 9/8, 12/8...) beat in dotted quarters, as in pretty_midi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bat.ingest.song import Song, TimeSignature


@dataclass(frozen=True)
class BeatGrid:
    """Beats of one song and where each sits in its bar."""

    times: np.ndarray  # float64 seconds, one per beat
    downbeats: np.ndarray  # bool, beat starts a bar
    bar_index: np.ndarray  # int32, 0-based bar of each beat
    beat_in_bar: np.ndarray  # int16, 0-based position in its bar
    beats_in_bar: np.ndarray  # int16, length of the beat's bar in beats (a pickup bar is short)
    numerator: np.ndarray  # int16, time signature in force at the beat
    denominator: np.ndarray  # int16
    source: str  # "tempo_map" (later: "madmom_midi", "madmom_audio")

    def __len__(self) -> int:
        return int(self.times.shape[0])

    @property
    def ends(self) -> np.ndarray:
        """End of each beat: the next beat, and for the last one its predecessor's length again."""
        if len(self.times) == 0:
            return self.times.copy()
        last = self.times[-1] - self.times[-2] if len(self.times) > 1 else 0.5
        return np.append(self.times[1:], self.times[-1] + last)


def beats_per_minute(qpm: float, numerator: int, denominator: int) -> float:
    """pretty_midi.qpm_to_bpm: the beat is the quarter scaled by the denominator, dotted in compound meters."""
    if denominator in (1, 2, 4, 8, 16, 32):
        if numerator == 3:
            return qpm * denominator / 4.0
        if numerator % 3 == 0:
            return qpm / 3.0 * denominator / 4.0
        return qpm * denominator / 4.0
    return qpm


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-8 + 1e-5 * abs(b)  # numpy.isclose's default tolerance, as pretty_midi uses


def beat_times(song: Song) -> np.ndarray:
    """Beat onsets in seconds: pretty_midi.PrettyMIDI.get_beats() for the same file."""
    change_times, tempi = song.tempo_times, song.tempi
    signatures = sorted(song.time_signatures, key=lambda ts: ts.time)
    end_time = song.end_time
    if len(change_times) == 1 and len(signatures) <= 1 and (not signatures or signatures[0].time == 0.0):
        bpm = beats_per_minute(tempi[0], signatures[0].numerator, signatures[0].denominator) if signatures else tempi[0]
        period = 60.0 / bpm
        if end_time <= 0:
            return np.zeros(0)
        # the walk accumulates a sum; keep its arithmetic so the float results match to the last bit
        steps = np.full(int(end_time / period) + 2, period)
        steps[0] = 0.0
        accumulated = np.cumsum(steps)
        return accumulated[accumulated < end_time]
    return _walk_beats(change_times, tempi, signatures, end_time)


def _walk_beats(change_times, tempi, signatures: list[TimeSignature], end_time: float) -> np.ndarray:
    beats = [0.0]
    tempo_idx, ts_idx = 0, 0
    n_tempi, n_ts = len(change_times), len(signatures)
    while tempo_idx < n_tempi - 1 and beats[-1] > change_times[tempo_idx + 1]:
        tempo_idx += 1
    while ts_idx < n_ts - 1 and beats[-1] > signatures[ts_idx + 1].time:
        ts_idx += 1

    def bpm_now() -> float:
        if signatures:
            ts = signatures[ts_idx]
            return beats_per_minute(tempi[tempo_idx], ts.numerator, ts.denominator)
        return tempi[tempo_idx]

    while beats[-1] < end_time:
        bpm = bpm_now()
        next_beat = beats[-1] + 60.0 / bpm
        if tempo_idx < n_tempi - 1 and next_beat > change_times[tempo_idx + 1]:
            next_beat = beats[-1]
            remaining = 1.0
            while tempo_idx < n_tempi - 1 and next_beat + remaining * 60.0 / bpm >= change_times[tempo_idx + 1]:
                overshot = (change_times[tempo_idx + 1] - next_beat) / (60.0 / bpm)
                next_beat += overshot * 60.0 / bpm
                remaining -= overshot
                tempo_idx += 1
                bpm = bpm_now()
            next_beat += remaining * 60.0 / bpm
        if signatures and ts_idx == 0:
            first = signatures[0].time
            if first > beats[-1] and (next_beat > first or _close(next_beat, first)):
                next_beat = first
        if ts_idx < n_ts - 1:
            following = signatures[ts_idx + 1].time
            if next_beat > following or _close(next_beat, following):
                next_beat = following
                ts_idx += 1
        beats.append(next_beat)
    return np.array(beats[:-1])


def downbeat_mask(times: np.ndarray, signatures: list[TimeSignature]) -> np.ndarray:
    """Which beats start a bar: pretty_midi.PrettyMIDI.get_downbeats() as a mask over ``times``."""
    signatures = sorted(signatures, key=lambda ts: ts.time)
    if not signatures or signatures[0].time > 0.0:
        signatures = [TimeSignature(0.0, 4, 4), *signatures]

    # first beat at each signature's time (np.isclose semantics), found for all signatures in one pass
    sig_times = np.array([ts.time for ts in signatures])
    at = np.clip(np.searchsorted(times, sig_times), 0, max(len(times) - 1, 0))
    candidates = np.stack([np.maximum(at - 1, 0), at]) if len(times) else np.zeros((2, len(sig_times)), np.int64)
    close = (np.abs(times[candidates] - sig_times) <= 1e-8 + 1e-5 * np.abs(sig_times)) if len(times) else candidates > 0
    found = {k: int(candidates[0, k] if close[0, k] else candidates[1, k]) for k in range(len(sig_times)) if close[:, k].any()}

    def first_index(k: int, default: int) -> int:
        return found.get(k, default)

    def step(ts: TimeSignature) -> int:
        return ts.numerator // 3 if ts.numerator % 3 == 0 and ts.numerator != 3 else ts.numerator

    mask = np.zeros(len(times), bool)
    end_idx = 0
    for k, (current, following) in enumerate(zip(signatures[:-1], signatures[1:])):
        start_idx = first_index(k, 0)
        end_idx = first_index(k + 1, start_idx)
        mask[start_idx:end_idx:step(current)] = True
    final = signatures[-1]
    mask[first_index(len(signatures) - 1, end_idx) :: step(final)] = True
    return mask


def beat_grid(song: Song) -> BeatGrid:
    """The song's grid from its tempo map, with bar positions derived from the downbeats."""
    times = beat_times(song)
    downbeats = downbeat_mask(times, song.time_signatures)
    numerator, denominator = _meter_per_beat(times, song.time_signatures)
    nominal = np.where((numerator % 3 == 0) & (numerator != 3), numerator // 3, numerator)
    return grid_from_downbeats(times, downbeats, nominal, numerator, denominator, "tempo_map")


def grid_from_downbeats(times, downbeats, nominal, numerator, denominator, source: str) -> BeatGrid:
    """Bar index, position and bar length of every beat, from where the bars start.

    ``nominal`` is the meter's beats per bar (per beat, or one number): the last bar, which the end of the
    song may cut, is given that length rather than what is left of it. Beats before the first downbeat form
    a short first bar, so bars are always well-formed.
    """
    n = len(times)
    downbeats = np.asarray(downbeats, bool).copy()
    if n and not downbeats[0]:
        downbeats[0] = True
    bar_index = np.cumsum(downbeats) - 1
    bar_starts = np.flatnonzero(downbeats)
    beat_in_bar = np.arange(n) - bar_starts[bar_index] if n else np.zeros(0, np.int64)
    bar_lengths = np.diff(np.append(bar_starts, n))
    beats_in_bar = bar_lengths[bar_index] if n else np.zeros(0, np.int64)
    if n:
        last = bar_index == bar_index[-1]
        beats_in_bar = np.where(last, np.maximum(beats_in_bar, nominal), beats_in_bar)
    return BeatGrid(
        times=times,
        downbeats=downbeats,
        bar_index=bar_index.astype(np.int32),
        beat_in_bar=beat_in_bar.astype(np.int16),
        beats_in_bar=beats_in_bar.astype(np.int16),
        numerator=np.broadcast_to(np.asarray(numerator, np.int16), (n,)).copy(),
        denominator=np.broadcast_to(np.asarray(denominator, np.int16), (n,)).copy(),
        source=source,
    )


def _meter_per_beat(times: np.ndarray, signatures: list[TimeSignature]) -> tuple[np.ndarray, np.ndarray]:
    signatures = sorted(signatures, key=lambda ts: ts.time)
    if not signatures or signatures[0].time > 0.0:
        signatures = [TimeSignature(0.0, 4, 4), *signatures]
    starts = np.array([ts.time for ts in signatures])
    which = np.clip(np.searchsorted(starts, times + 1e-6, side="right") - 1, 0, len(signatures) - 1)
    numerators = np.array([ts.numerator for ts in signatures], np.int16)
    denominators = np.array([ts.denominator for ts in signatures], np.int16)
    return numerators[which], denominators[which]
