"""Is a MIDI file quantized (its tempo map can be trusted) or a performance (onsets float free of it)?

A sequenced file places onsets on the metrical grid its tempo map defines: on 16ths and 8th-note triplets
(finer in ornaments), to within a tick. A recorded performance keeps whatever tempo the sequencer was set
to (often the default 120 qpm), and its onsets fall anywhere relative to that grid. The evidence is the share of onsets within
``tolerance`` of a grid point, measured in quarter notes of the file's own tempo map; free onsets land there
by chance only ``chance`` of the time (the grid points' coverage of the quarter note).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bat.ingest.song import Song


@dataclass(frozen=True)
class DetectionConfig:
    tolerance: float = 0.005  # quarter notes (2.5 ms at 120 qpm): quantized onsets sit on exact ticks
    # 64ths and 16th-note triplets: fine enough for ornaments, Scotch snaps and converted scores whose odd
    # short bars (a 1/32 bar) shift the rest of the piece off the 16th grid
    subdivisions: tuple[int, ...] = (16, 12)
    threshold: float = 0.6  # share on grid above which the tempo map is trusted
    min_onsets: int = 16  # fewer distinct onsets: too little evidence to call it a performance


DEFAULT_DETECTION = DetectionConfig()


@dataclass(frozen=True)
class GridEvidence:
    """The decision and why: ``on_grid`` against ``chance``, over ``n_onsets`` distinct onsets."""

    quantized: bool
    on_grid: float  # share of distinct onsets within tolerance of the 64th/16th-triplet grid
    chance: float  # the share free onsets would reach
    n_onsets: int
    confidence: float  # 0..1, how far on_grid is from the threshold, in the direction decided

    def describe(self) -> str:
        kind = "quantized" if self.quantized else "performance"
        return f"{kind}: on_grid={self.on_grid:.3f} chance={self.chance:.3f} onsets={self.n_onsets}"


def quarter_positions(song: Song, times: np.ndarray) -> np.ndarray:
    """Times in seconds -> positions in quarter notes along the song's tempo map."""
    change_times, qpm = song.tempo_times, song.tempi
    segment = np.clip(np.searchsorted(change_times, times, side="right") - 1, 0, len(change_times) - 1)
    quarters_at_change = np.concatenate([[0.0], np.cumsum(np.diff(change_times) * qpm[:-1] / 60.0)])
    return quarters_at_change[segment] + (times - change_times[segment]) * qpm[segment] / 60.0


def grid_points(subdivisions: tuple[int, ...]) -> np.ndarray:
    points = {round(k / s, 9) for s in subdivisions for k in range(s + 1)}
    return np.array(sorted(points))


def detect_performance(song: Song, config: DetectionConfig = DEFAULT_DETECTION) -> GridEvidence:
    """Decide whether ``song``'s onsets sit on its tempo map's grid; see the module docstring."""
    onsets = np.concatenate([song.notes.start, song.drums.start])
    onsets = np.unique(np.round(onsets, 4))  # a chord is one onset
    points = grid_points(config.subdivisions)
    gaps = np.diff(points)
    chance = float(np.minimum(gaps, 2 * config.tolerance).sum())
    if onsets.size == 0:
        return GridEvidence(True, 1.0, chance, 0, 0.0)
    fraction = np.mod(quarter_positions(song, onsets), 1.0)
    distance = np.abs(fraction[:, None] - points[None, :]).min(axis=1)
    on_grid = float((distance <= config.tolerance).mean())
    quantized = on_grid >= config.threshold or onsets.size < config.min_onsets
    if on_grid >= config.threshold:
        margin = (on_grid - config.threshold) / (1.0 - config.threshold)
    else:
        margin = (config.threshold - on_grid) / max(config.threshold - chance, 1e-9)
    confidence = float(np.clip(margin, 0.0, 1.0)) * min(1.0, onsets.size / (2 * config.min_onsets))
    return GridEvidence(quantized, on_grid, chance, int(onsets.size), confidence)
