"""Which General MIDI instrument families sound in the beat (program // 8); transcribed notes of no known
instrument (``UNKNOWN_PROGRAM``: audio, a separator's "other" stem) sound in none."""

from __future__ import annotations

import numpy as np

from bat.features.base import feature_group
from bat.features.context import BeatContext

FAMILIES = (
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive", "sound_effects",
)


@feature_group(
    "instruments",
    [
        *[(f"family_{f}", f"A {f.replace('_', ' ')} instrument (GM programs {8 * k}-{8 * k + 7}) sounds.")
          for k, f in enumerate(FAMILIES)],
        ("instruments_3_plus", "Three or more instrument families sound together."),
        ("new_family_enters", "A family sounds that did not sound in the previous beat."),
    ],
)
def instruments(ctx: BeatContext) -> list[np.ndarray]:
    pairs, n = ctx.pitched, ctx.n
    program = ctx.song.notes.program[pairs.note].astype(np.int64) if pairs.note.size else np.zeros(0, np.int64)
    named = program >= 0  # a transcription's notes of no known instrument (UNKNOWN_PROGRAM) sound in no family
    present = np.zeros((n, len(FAMILIES)), bool)
    present[pairs.beat[named], program[named] // 8] = True
    previous = np.zeros_like(present)
    previous[1:] = present[:-1]
    return [
        *[present[:, k] for k in range(len(FAMILIES))],
        present.sum(axis=1) >= 3,
        (present & ~previous).any(axis=1) & (np.arange(n) > 0),
    ]
