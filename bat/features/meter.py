"""Where the beat sits in its bar, and what kind of meter the bar is in."""

from __future__ import annotations

import numpy as np

from bat.features.base import feature_group
from bat.features.context import BeatContext


@feature_group(
    "meter",
    [
        ("downbeat", "The beat starts a bar."),
        ("beat_2", "Second beat of its bar."),
        ("beat_3", "Third beat of its bar."),
        ("beat_4", "Fourth beat of its bar."),
        ("beat_5_plus", "Fifth or later beat of its bar."),
        ("bar_quarter_1", "In the first quarter of the bar (beat index / bar length < 1/4)."),
        ("bar_quarter_2", "In the second quarter of the bar."),
        ("bar_quarter_3", "In the third quarter of the bar."),
        ("bar_quarter_4", "In the last quarter of the bar."),
        ("last_beat_of_bar", "The last beat of its bar."),
        ("bar_first_half", "In the first half of the bar."),
        ("meter_duple", "Simple duple or quadruple meter (2 or 4 beats a bar: 2/4, 4/4, 2/2...)."),
        ("meter_triple", "Simple triple meter (3 beats a bar: 3/4, 3/8...)."),
        ("meter_compound", "Compound meter, beats are dotted (6/8, 9/8, 12/8...)."),
        ("meter_irregular", "Any other meter (5/4, 7/8...)."),
        ("meter_change", "The bar's meter differs from the previous bar's."),
        ("short_bar", "The bar is shorter than its meter, or a first bar shorter than the second (a pickup)."),
        ("bar_even", "The bar has an even index (pairs of bars)."),
        ("first_bar", "The song's first bar."),
        ("last_bar", "The song's last bar."),
    ],
)
def meter(ctx: BeatContext) -> list[np.ndarray]:
    grid = ctx.grid
    position, length = grid.beat_in_bar.astype(np.int64), np.maximum(grid.beats_in_bar.astype(np.int64), 1)
    numerator = grid.numerator.astype(np.int64)
    compound = (numerator % 3 == 0) & (numerator != 3)
    nominal = np.where(compound, numerator // 3, numerator)
    quarter = np.minimum(position * 4 // length, 3)
    bar_meter = numerator * 100 + grid.denominator.astype(np.int64)
    first_of_bar = np.flatnonzero(grid.downbeats)
    meter_of_bar = bar_meter[first_of_bar]
    changed_bar = np.append(False, meter_of_bar[1:] != meter_of_bar[:-1]) if first_of_bar.size else np.zeros(0, bool)
    bar = grid.bar_index.astype(np.int64)
    short = grid.beats_in_bar < nominal
    if first_of_bar.size > 1:  # a pickup written as a bar of its own short meter (1/4 before 4/4)
        short |= (bar == 0) & (grid.beats_in_bar[0] < nominal[first_of_bar[1]])
    return [
        grid.downbeats,
        position == 1,
        position == 2,
        position == 3,
        position >= 4,
        quarter == 0,
        quarter == 1,
        quarter == 2,
        quarter == 3,
        position == length - 1,
        position * 2 < length,
        ~compound & np.isin(numerator, (2, 4)),
        numerator == 3,
        compound,
        ~compound & ~np.isin(numerator, (2, 3, 4)),
        changed_bar[bar] if bar.size else np.zeros(0, bool),
        short,
        bar % 2 == 0,
        bar == 0,
        bar == (bar.max() if bar.size else 0),
    ]
