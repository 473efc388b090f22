"""Drum hits by General MIDI key (channel 10): kick, snare, hi-hats with their count, cymbals, toms, fills."""

from __future__ import annotations

import numpy as np

from bat.features.base import feature_group
from bat.features.context import BeatContext

KICK = (35, 36)
SNARE = (37, 38, 39, 40)  # side stick, snare, clap, electric snare
CLOSED_HAT = (42, 44)  # closed, pedal
OPEN_HAT = (46,)
RIDE = (51, 53, 59)
CRASH = (49, 52, 55, 57)  # crash 1/2, china, splash
TOMS = (41, 43, 45, 47, 48, 50)
LATIN_AND_OTHER = tuple(k for k in range(27, 88) if k not in KICK + SNARE + CLOSED_HAT + OPEN_HAT + RIDE + CRASH + TOMS)
KINDS = (KICK, SNARE, CLOSED_HAT, OPEN_HAT, RIDE, CRASH, TOMS, LATIN_AND_OTHER)
KIND_OF_KEY = np.full(128, -1, np.int64)  # GM drum key -> index into KINDS, one lookup instead of isin calls
for _kind, _keys in enumerate(KINDS):
    KIND_OF_KEY[list(_keys)] = _kind


@feature_group(
    "drums",
    [
        ("drums_present", "A drum hit in the beat."),
        ("kick", "Bass drum hit."),
        ("kick_on_beat", "Bass drum on the beat's first 16th."),
        ("kick_off_beat", "Bass drum later in the beat."),
        ("snare", "Snare, clap or side stick hit."),
        ("snare_on_beat", "Snare on the beat's first 16th (a backbeat when on beats 2 and 4)."),
        ("hihat_closed_1", "One closed or pedal hi-hat hit."),
        ("hihat_closed_2", "Two closed hi-hat hits (8ths)."),
        ("hihat_closed_3", "Three closed hi-hat hits (triplets)."),
        ("hihat_closed_4_plus", "Four or more closed hi-hat hits (16ths)."),
        ("hihat_open", "Open hi-hat."),
        ("ride", "Ride cymbal or bell."),
        ("crash", "Crash, china or splash cymbal."),
        ("toms", "A tom hit."),
        ("fill", "A fill: two or more tom hits, or four or more snare hits in the beat."),
        ("percussion_other", "Another percussion instrument (latin, cowbell, shakers...)."),
        ("drum_hits_8_plus", "Eight or more drum hits in the beat."),
    ],
)
def drums(ctx: BeatContext) -> list[np.ndarray]:
    pairs, n = ctx.drums, ctx.n
    onset = pairs.onset
    key = ctx.song.drums.pitch[pairs.note].astype(np.int64) if pairs.note.size else np.zeros(0, np.int64)
    kind = KIND_OF_KEY[np.clip(key, 0, 127)]
    on_beat = pairs.position < 0.125
    slot = kind + 1  # 0: unknown key
    counts = np.zeros((n, len(KINDS) + 1), np.int64)
    on_beat_counts = np.zeros_like(counts)
    np.add.at(counts, (pairs.beat[onset], slot[onset]), 1)
    np.add.at(on_beat_counts, (pairs.beat[onset & on_beat], slot[onset & on_beat]), 1)
    kick, snare, hats, open_hat, ride, crash, toms, other = (counts[:, k + 1] for k in range(len(KINDS)))
    hits = counts.sum(axis=1)
    return [
        hits > 0,
        kick > 0,
        on_beat_counts[:, 1] > 0,
        kick > on_beat_counts[:, 1],
        snare > 0,
        on_beat_counts[:, 2] > 0,
        hats == 1,
        hats == 2,
        hats == 3,
        hats >= 4,
        open_hat > 0,
        ride > 0,
        crash > 0,
        toms > 0,
        (toms >= 2) | (snare >= 4),
        other > 0,
        hits >= 8,
    ]
