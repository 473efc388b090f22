"""Texture and rhythm: how the beat's notes are attacked (block, strum, arpeggio), where, and how loud."""

from __future__ import annotations

import numpy as np

from bat.features.base import feature_group
from bat.features.context import POPCOUNT_12, BeatContext, segment_count, segment_reduce

STRUM_MIN_SPREAD = 0.015  # seconds: closer onsets are a block chord, not a strum
STRUM_MAX_SPREAD = 0.15


def _per_group_monotonic(pitch: np.ndarray, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(pitches only rise, pitches only fall) inside each group, in onset order."""
    same = group[1:] == group[:-1]
    step = np.diff(pitch.astype(np.int64))
    falls = np.bincount(group[1:][same & (step < 0)], minlength=n_groups)
    rises = np.bincount(group[1:][same & (step > 0)], minlength=n_groups)
    return falls == 0, rises == 0


def _onset_groups(ctx: BeatContext) -> dict[str, np.ndarray]:
    notes, group = ctx.song.notes, ctx.onset_group
    n_groups = int(group[-1]) + 1 if group.size else 0
    size = np.bincount(group, minlength=n_groups)
    first = np.cumsum(size) - size
    last = first + size - 1
    spread = notes.start[last] - notes.start[first] if n_groups else np.zeros(0)
    rising, falling = _per_group_monotonic(notes.pitch, group, n_groups)
    return {"size": size, "first": first, "spread": spread, "monotonic": rising | falling,
            "beat": ctx.note_onset_beat[first] if n_groups else np.zeros(0, np.int64)}


def _per_beat_any(mask: np.ndarray, beat: np.ndarray, n: int) -> np.ndarray:
    keep = mask & (beat >= 0)
    return np.bincount(beat[keep], minlength=n) > 0


def _arpeggio(ctx: BeatContext, groups: dict[str, np.ndarray]) -> np.ndarray:
    """Three or more single-note onsets in the beat, on three or more pitch classes, moving one way."""
    single = groups["size"] == 1
    notes_idx, beat = groups["first"][single], groups["beat"][single]
    keep = beat >= 0
    notes_idx, beat = notes_idx[keep], beat[keep]
    pitch = ctx.song.notes.pitch[notes_idx].astype(np.int64)
    count = np.bincount(beat, minlength=ctx.n)
    pcs = np.zeros(ctx.n, np.int64)
    np.bitwise_or.at(pcs, beat, 1 << (pitch % 12))
    n_pcs = POPCOUNT_12[pcs]
    rising, falling = _per_group_monotonic(pitch, beat, ctx.n)
    same_note = np.zeros(ctx.n, bool)
    if beat.size > 1:
        repeated = (beat[1:] == beat[:-1]) & (pitch[1:] == pitch[:-1])
        same_note = np.bincount(beat[1:][repeated], minlength=ctx.n) > 0
    return (count >= 3) & (n_pcs >= 3) & (rising | falling) & ~same_note


@feature_group(
    "texture",
    [
        ("block_chord", "Three or more notes start together (within 15 ms)."),
        ("strum", "Three or more notes start spread over 15-150 ms, moving one way in pitch (a strummed chord)."),
        ("arpeggio", "Three or more single notes on three or more pitch classes, moving one way."),
        ("held_from_previous", "A note sounding in the beat started before it."),
        ("silence", "No pitched note sounds in the beat."),
        ("all_released", "Every pitched note of the beat ends a 16th or more before the beat does (detached)."),
        ("onsets_0", "No pitched onset in the beat."),
        ("onsets_1", "One pitched onset."),
        ("onsets_2_3", "Two or three pitched onsets."),
        ("onsets_4_7", "Four to seven pitched onsets."),
        ("onsets_8_plus", "Eight or more pitched onsets."),
        ("onset_16th_1", "A pitched onset on the beat's first 16th (the beat itself)."),
        ("onset_16th_2", "A pitched onset on the beat's second 16th."),
        ("onset_16th_3", "A pitched onset on the beat's third 16th (the off-beat 8th)."),
        ("onset_16th_4", "A pitched onset on the beat's fourth 16th."),
        ("triplet", "A pitched onset on a third of the beat (triplets; plain 8ths in compound meter)."),
        ("syncopated", "Onsets in the beat, none on the beat itself, while a note is held over it."),
        ("long_note", "A note starting in the beat lasts two beats or more."),
        ("accent", "The beat's loudest onset is louder than the song's mean by more than one deviation."),
        ("soft", "The beat's loudest onset is softer than the song's mean by more than one deviation."),
    ],
)
def texture(ctx: BeatContext) -> list[np.ndarray]:
    pairs, n = ctx.pitched, ctx.n
    groups = _onset_groups(ctx)
    big = groups["size"] >= 3
    block = _per_beat_any(big & (groups["spread"] < STRUM_MIN_SPREAD), groups["beat"], n)
    strum = _per_beat_any(
        big & (groups["spread"] >= STRUM_MIN_SPREAD) & (groups["spread"] <= STRUM_MAX_SPREAD) & groups["monotonic"],
        groups["beat"],
        n,
    )
    onset, position = pairs.onset, pairs.position
    nearest = np.round(position * 4)
    slot = np.where(np.abs(position * 4 - nearest) < 0.25, nearest, -1).astype(np.int64)  # within 1/16 beat of a 16th
    thirds = np.abs(position * 3 - np.round(position * 3)) < 0.06
    triplet = onset & thirds & np.isin(np.round(position * 3), (1, 2))
    count = ctx.n_onsets
    grid_end = ctx.grid.ends[pairs.beat] if pairs.beat.size else np.zeros(0)
    note_end = ctx.song.notes.end[pairs.note]
    beat_length = (ctx.grid.ends - ctx.grid.times)[pairs.beat] if pairs.beat.size else np.zeros(0)
    ends_inside = segment_count(note_end <= grid_end - beat_length / 4 + 1e-6, pairs.beat, n)
    sounding = np.diff(pairs.indptr)
    note_length = note_end - ctx.song.notes.start[pairs.note]
    velocity = np.where(onset, ctx.song.notes.velocity[pairs.note], -1).astype(np.int64)
    loudest = segment_reduce(np.maximum, velocity, pairs.indptr, -1)
    mean, std = ctx.song_velocity_stats
    on_beat = segment_count(onset & (slot == 0), pairs.beat, n) > 0
    return [
        block,
        strum,
        _arpeggio(ctx, groups),
        ctx.held,
        sounding == 0,
        (sounding > 0) & (ends_inside == sounding),
        count == 0,
        count == 1,
        (count >= 2) & (count <= 3),
        (count >= 4) & (count <= 7),
        count >= 8,
        *[segment_count(onset & (slot == k), pairs.beat, n) > 0 for k in range(4)],
        segment_count(triplet, pairs.beat, n) > 0,
        (count > 0) & ~on_beat & ctx.held,
        segment_count(onset & (note_length >= 2 * beat_length - 1e-6), pairs.beat, n) > 0,
        (loudest >= 0) & (std >= 2.0) & (loudest > mean + std),
        (loudest >= 0) & (std >= 2.0) & (loudest < mean - std),
    ]
