"""The top voice (skyline: the highest note of each onset group): how busy it is and where it goes."""

from __future__ import annotations

import numpy as np

from bat.features.base import feature_group
from bat.features.context import BeatContext

MOTION_BUCKETS = (("step", 1, 2), ("third", 3, 4), ("fourth_fifth", 5, 7), ("sixth_seventh", 8, 11), ("octave_plus", 12, 127))


@feature_group(
    "melody",
    [
        ("melody_present", "A melody note starts in the beat."),
        ("melody_onsets_1", "One melody onset in the beat."),
        ("melody_onsets_2", "Two melody onsets in the beat."),
        ("melody_onsets_3_4", "Three or four melody onsets in the beat."),
        ("melody_onsets_5_plus", "Five or more melody onsets in the beat."),
        ("melody_rises_in_beat", "The beat's last melody note is higher than its first."),
        ("melody_falls_in_beat", "The beat's last melody note is lower than its first."),
        ("melody_unison", "The first melody note repeats the previous beat's last melody note."),
        *[
            (f"melody_{name}_{way}", f"Melody moves {way} by {lo}-{hi} semitones from the previous beat.")
            for name, lo, hi in MOTION_BUCKETS
            for way in ("up", "down")
        ],
        *[(f"melody_above_bass_{k}", f"The first melody note is pitch class {k} above the bass.") for k in range(12)],
        ("melody_is_bass", "The melody note is the bass itself (a single voice)."),
        ("melody_sustained", "No melody onset, but the top voice holds a note from before."),
    ],
)
def melody(ctx: BeatContext) -> list[np.ndarray]:
    first, last = ctx.melody_first_last
    count = ctx.melody_count
    present = first >= 0
    previous_last = ctx.beats_shifted(last, 1, -1)
    moves = present & (previous_last >= 0)
    step = np.where(moves, first - previous_last, 0)
    above_bass = np.where(present & ctx.has_bass, (first - ctx.bass) % 12, -1)
    motion = []
    for _, lo, hi in MOTION_BUCKETS:
        motion.append(moves & (step >= lo) & (step <= hi))
        motion.append(moves & (-step >= lo) & (-step <= hi))
    return [
        present,
        count == 1,
        count == 2,
        (count >= 3) & (count <= 4),
        count >= 5,
        present & (last > first),
        present & (last < first),
        moves & (step == 0),
        *motion,
        *[above_bass == k for k in range(12)],
        present & (first == ctx.bass),
        ~present & ctx.held,
    ]
