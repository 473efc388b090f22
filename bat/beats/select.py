"""Choose a song's beat grid: its tempo map when the file is quantized, else the tracked beats.

The featurizer takes whatever ``select_grid`` returns exactly as it takes a tempo-map grid: a ``BeatGrid``
with bars, positions and meter filled coherently. ``GridChoice`` carries how the grid was found
(``grid.source``), how sure bat is (``confidence``) and the evidence behind the decision, for the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bat.beats.grid import BeatGrid, beat_grid, grid_from_downbeats
from bat.beats.performance import DEFAULT_DETECTION, DetectionConfig, detect_performance
from bat.beats.tracking import DEFAULT_TRACKING, TrackedBeats, TrackingConfig, track_notes
from bat.ingest.song import Song


@dataclass
class GridChoice:
    grid: BeatGrid
    confidence: float  # 0..1
    evidence: str  # e.g. "performance: on_grid=0.25 chance=0.24 onsets=812; bpm=96.0 level_share=0.8 ..."


def select_grid(
    song: Song, detection: DetectionConfig = DEFAULT_DETECTION, tracking: TrackingConfig = DEFAULT_TRACKING
) -> GridChoice:
    """The tempo-map grid (pretty_midi-equal) for quantized MIDI; madmom-tracked beats for performances."""
    decision = detect_performance(song, detection)
    if decision.quantized:
        return GridChoice(beat_grid(song), decision.confidence, decision.describe())
    tracked = track_notes(song, tracking)
    if len(tracked.times) < 2:  # nothing to track (a few notes): the tempo map is all there is
        return GridChoice(beat_grid(song), 0.0, decision.describe() + "; tracking found no beats")
    evidence = decision.describe() + "; " + describe(tracked)
    return GridChoice(tracked_grid(tracked, song.end_time), tracked.confidence, evidence)


def describe(tracked: TrackedBeats) -> str:
    meter = meter_of(tracked)
    details = " ".join(f"{name}={value:g}" for name, value in tracked.evidence.items())
    return f"{tracked.source} meter={meter[0]}/{meter[1]} downbeats={tracked.downbeats_by} {details}"


def meter_of(tracked: TrackedBeats) -> tuple[int, int]:
    """Time signature of a tracked bar: beats per bar, compound when the beat divides in three."""
    if tracked.subdivision == 3:
        return tracked.beats_per_bar * 3, 8
    return tracked.beats_per_bar, 4


def tracked_grid(tracked: TrackedBeats, end_time: float) -> BeatGrid:
    """A BeatGrid from tracked beats, extended at the same pace to cover 0..``end_time`` (notes before the
    first or after the last detected beat still need a beat to belong to)."""
    times, position = _extend(tracked.times, tracked.beat_in_bar, tracked.beats_per_bar, end_time)
    numerator, denominator = meter_of(tracked)
    return grid_from_downbeats(times, position == 0, tracked.beats_per_bar, numerator, denominator, tracked.source)


def _extend(times: np.ndarray, position: np.ndarray, beats_per_bar: int, end_time: float):
    times = np.asarray(times, np.float64)
    position = np.asarray(position, np.int64)
    if len(times) < 2:
        return times, position
    head = times[1] - times[0]
    n_before = int(np.floor(times[0] / head + 0.5)) if times[0] > 0.5 * head else 0
    tail = times[-1] - times[-2]
    n_after = int(np.ceil((end_time - times[-1]) / tail - 1.0)) if end_time > times[-1] + tail else 0
    before = times[0] - head * np.arange(n_before, 0, -1)
    after = times[-1] + tail * np.arange(1, n_after + 1)
    pos_before = (position[0] - np.arange(n_before, 0, -1)) % beats_per_bar
    pos_after = (position[-1] + np.arange(1, n_after + 1)) % beats_per_bar
    return np.concatenate([np.maximum(before, 0.0), times, after]), np.concatenate([pos_before, position, pos_after])
