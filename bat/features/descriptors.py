"""Compact per-beat descriptors from which the model computes pairwise beat features on its device.

Pairwise features over a 512-beat window are 512² × ~50 values: far too many to store at Lakh scale, so
only these few integers per beat are stored and the pairs are derived on the fly. Shapes are hashed so that
equality of hashes means equality of content, transposition-invariant: the absolute pitch lives apart in
``bass_pitch`` and ``melody_pitch``.
"""

from __future__ import annotations

import numpy as np

from bat.features.context import BeatContext, segment_reduce

DESCRIPTOR_NAMES: tuple[str, ...] = (
    "bass_pitch",  # MIDI pitch of the lowest sounding note, -1 if none
    "pcset",  # 12-bit mask of sounding pitch classes (bit k: pitch class k), absolute
    "melody_pitch",  # pitch of the first melody (skyline) onset, -1 if none
    "melody_shape",  # hash of the melody's (onset position, pitch - melody_pitch) pairs, 0 if none
    "beat_shape",  # hash of all notes' (onset position or held, pitch - bass_pitch), 0 if silent
    "bar_index",  # 0-based bar of the beat in the song
    "beat_in_bar",  # 0-based position of the beat in its bar
)
DESCRIPTOR_DESCRIPTIONS: dict[str, str] = {
    "bass_pitch": "MIDI pitch of the lowest sounding note, -1 if none.",
    "pcset": "12-bit mask of sounding pitch classes (bit k: pitch class k).",
    "melody_pitch": "Pitch of the beat's first melody (skyline) onset, -1 if none.",
    "melody_shape": "Transposition-invariant hash of the beat's melody (onset positions, intervals to its first note); 0 if none.",
    "beat_shape": "Transposition-invariant hash of all notes of the beat (onset position or held, interval above the bass); 0 if silent.",
    "bar_index": "0-based bar of the beat in the song.",
    "beat_in_bar": "0-based position of the beat in its bar.",
}

_U64 = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads small integers over 64 bits so sums of them rarely collide."""
    with np.errstate(over="ignore"):
        x = x.astype(_U64) + _U64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


def _multiset_hash(beat: np.ndarray, a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Per-beat order-free hash of the (a, b) items of that beat (``beat`` sorted); 0 for a beat without items."""
    counts = np.bincount(beat, minlength=n) if beat.size else np.zeros(n, np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    with np.errstate(over="ignore"):
        item = _mix(_mix(a.astype(np.int64) + 1_000) ^ (b.astype(np.int64) + 1_000).astype(_U64))
        out = segment_reduce(np.add, item, indptr, 0).astype(_U64)
    out[(out == 0) & (counts > 0)] = 1
    return out.view(np.int64)


def compute_descriptors(ctx: BeatContext) -> np.ndarray:
    """(n_beats, len(DESCRIPTOR_NAMES)) int64."""
    n = ctx.n
    pairs = ctx.pitched
    first, _ = ctx.melody_first_last
    melody_beat, melody_notes = ctx.melody_beat, ctx.melody_notes
    keep = melody_beat >= 0
    melody_beat, melody_notes = melody_beat[keep], melody_notes[keep]
    melody_pos = np.round(ctx.note_position[melody_notes] * 12).astype(np.int64)
    melody_rel = ctx.song.notes.pitch[melody_notes].astype(np.int64) - first[melody_beat]
    melody_shape = _multiset_hash(melody_beat, melody_pos, melody_rel, n)
    position = np.where(pairs.onset, np.round(pairs.position * 12), -1).astype(np.int64)
    beat_shape = _multiset_hash(pairs.beat, position, ctx.pair_pitch - ctx.bass[pairs.beat], n)
    return np.stack(
        [
            ctx.bass,
            ctx.pcmask,
            first,
            melody_shape,
            beat_shape,
            ctx.grid.bar_index.astype(np.int64),
            ctx.grid.beat_in_bar.astype(np.int64),
        ],
        axis=1,
    ).astype(np.int64)
