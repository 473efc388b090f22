"""Harmony relative to the bass: intervals above it, chord qualities, and how bass and chord move."""

from __future__ import annotations

import numpy as np

from bat.features.base import feature_group
from bat.features.context import POPCOUNT_12, BeatContext, segment_count

# Chord templates as intervals above the root.
TRIADS = {"major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8)}
SEVENTHS = {
    "dominant7": (0, 4, 7, 10),
    "major7": (0, 4, 7, 11),
    "minor7": (0, 3, 7, 10),
    "half_diminished7": (0, 3, 6, 10),
    "diminished7": (0, 3, 6, 9),
}
EXACT = {"sus2": (0, 2, 7), "sus4": (0, 5, 7), "power": (0, 7)}
QUALITIES = (*TRIADS, *SEVENTHS, *EXACT)


def _mask(intervals, root: int = 0) -> int:
    return sum(1 << ((root + i) % 12) for i in intervals)


def _build_tables() -> tuple[np.ndarray, np.ndarray]:
    """For each of the 4096 bass-relative pitch-class sets: which qualities it forms, and the root's
    interval above the bass (-1 if it holds no triad or seventh chord). Built once; features index it.

    Triads and sevenths may carry extra tones (up to 4 and 5 pitch classes); sus and power chords must match
    exactly. A seventh chord's root wins over a triad's (A-C-E-G is A minor 7, not C major).
    """
    masks = np.arange(4096)
    n_pcs = np.array([bin(m).count("1") for m in masks])
    quality = np.zeros((4096, len(QUALITIES)), bool)
    triad_root, seventh_root = np.full(4096, -1), np.full(4096, -1)
    for q, name in enumerate(QUALITIES):
        intervals = {**TRIADS, **SEVENTHS, **EXACT}[name]
        for r in range(12):
            template = _mask(intervals, r)
            if name in EXACT:
                fits = masks == template
            else:
                fits = ((masks & template) == template) & (n_pcs <= (5 if name in SEVENTHS else 4))
            quality[:, q] |= fits
            if name in TRIADS:
                triad_root = np.where(fits & (triad_root < 0), r, triad_root)
            elif name in SEVENTHS:
                seventh_root = np.where(fits & (seventh_root < 0), r, seventh_root)
    return quality, np.where(seventh_root >= 0, seventh_root, triad_root)


QUALITY_TABLE, ROOT_TABLE = _build_tables()


@feature_group(
    "harmony",
    [
        ("bass_present", "A pitched note sounds in the beat (so the beat has a bass)."),
        ("bass_onset_on_beat", "A note at the bass pitch starts in the beat's first 16th."),
        ("bass_onset_off_beat", "A note at the bass pitch starts later in the beat."),
        *[(f"interval_{k}", f"Pitch class {k} semitones above the bass sounds in the beat.") for k in range(1, 12)],
        ("octave_doubling", "The bass's pitch class is doubled at an octave or more above it."),
        ("pcs_1", "One distinct pitch class sounds."),
        ("pcs_2", "Two distinct pitch classes sound."),
        ("pcs_3", "Three distinct pitch classes sound."),
        ("pcs_4", "Four distinct pitch classes sound."),
        ("pcs_5_plus", "Five or more distinct pitch classes sound."),
        *[(f"chord_{q}", f"The pitch-class set forms a {q.replace('_', ' ')} chord.") for q in QUALITIES],
        ("root_in_bass", "The chord's root is in the bass (root position)."),
        ("third_in_bass", "The chord's third is in the bass (first inversion)."),
        ("fifth_in_bass", "The chord's fifth is in the bass (second inversion)."),
        ("seventh_in_bass", "The chord's seventh is in the bass (third inversion)."),
        ("same_pcset_as_previous", "Same pitch-class set as the previous beat."),
        ("same_bass_as_previous", "Same bass pitch as the previous beat."),
        ("bass_step_up", "The bass moved up by 1-2 semitones from the previous beat."),
        ("bass_step_down", "The bass moved down by 1-2 semitones from the previous beat."),
        ("bass_leap_up", "The bass moved up by 3 or more semitones."),
        ("bass_leap_down", "The bass moved down by 3 or more semitones."),
        ("bass_fifth_motion", "The bass moved by a fourth or fifth (pitch class 5 or 7 apart)."),
        ("harmony_change", "Pitch-class set or bass differ from the previous beat."),
    ],
)
def harmony(ctx: BeatContext) -> list[np.ndarray]:
    bass, has_bass, rel = ctx.bass, ctx.has_bass, ctx.relmask
    pairs = ctx.pitched
    at_bass = pairs.onset & (ctx.pair_pitch == bass[pairs.beat])
    on_beat = segment_count(at_bass & (pairs.position < 0.125), pairs.beat, ctx.n) > 0
    off_beat = segment_count(at_bass & (pairs.position >= 0.125), pairs.beat, ctx.n) > 0
    n_pcs = POPCOUNT_12[ctx.pcmask]
    quality = QUALITY_TABLE[rel] & has_bass[:, None]
    root = np.where(has_bass, ROOT_TABLE[rel], -1)
    third = np.where(quality[:, QUALITIES.index("minor")] | quality[:, QUALITIES.index("diminished")], 3, 4)
    fifth = np.where(quality[:, QUALITIES.index("diminished")], 6, np.where(quality[:, QUALITIES.index("augmented")], 8, 7))
    seventh_kind = quality[:, [QUALITIES.index(s) for s in SEVENTHS]].any(axis=1)
    seventh = np.where(quality[:, QUALITIES.index("diminished7")], 9, np.where(quality[:, QUALITIES.index("major7")], 11, 10))
    bass_in = (-root) % 12  # interval of the bass above the root
    has_root = root >= 0
    prev_bass, prev_mask = ctx.beats_shifted(bass, 1, -1), ctx.beats_shifted(ctx.pcmask, 1, -1)
    both = has_bass & (prev_bass >= 0)
    motion = np.where(both, bass - prev_bass, 0)
    return [
        has_bass,
        on_beat,
        off_beat,
        *[(rel >> k) & 1 == 1 for k in range(1, 12)],
        ctx.octave_doubling,
        n_pcs == 1,
        n_pcs == 2,
        n_pcs == 3,
        n_pcs == 4,
        n_pcs >= 5,
        *[quality[:, q] for q in range(len(QUALITIES))],
        has_root & (bass_in == 0),
        has_root & (bass_in == third),
        has_root & (bass_in == fifth),
        has_root & seventh_kind & (bass_in == seventh),
        has_bass & (ctx.pcmask == prev_mask),
        both & (motion == 0),
        both & (motion >= 1) & (motion <= 2),
        both & (motion <= -1) & (motion >= -2),
        both & (motion >= 3),
        both & (motion <= -3),
        both & np.isin(np.abs(motion) % 12, (5, 7)),
        has_bass & ((ctx.pcmask != prev_mask) | (bass != prev_bass)),
    ]
