"""A store of made-up but structured songs, for tests, benchmarks and ``bat pretrain --store synthetic:N``.

Each song has a meter (3 or 4 beats), a key, an 8-bar A section and a B section (ABAB...), each with a
4-chord progression, one chord per bar, a bass line, a melodic motif over the chords and a drum pattern.
Features are computed from that structure, plus a few noise bits, so a masked beat can be guessed from its
neighbours, from the bar before and from 4 or 8 bars earlier; the descriptors follow the featurizer's
contract (see ``bat.model.pairwise.DESCRIPTOR_NAMES``). Songs are generated on demand from (seed, number).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bat.model.pairwise import DESCRIPTOR_NAMES

MAJOR, MINOR = (0, 4, 7), (0, 3, 7)
DEGREES = [(0, MAJOR), (5, MAJOR), (7, MAJOR), (9, MINOR), (2, MINOR), (4, MINOR)]  # I IV V vi ii iii

FEATURES: list[tuple[str, str]] = [
    *((f"beat_in_bar_{k}", "meter") for k in range(4)),
    ("triple_meter", "meter"),
    *((f"interval_{k}", "harmony") for k in range(1, 12)),
    ("chord_change", "harmony"),
    ("minor_chord", "harmony"),
    ("bass_fifth", "harmony"),
    ("melody_onset", "melody"),
    ("melody_up", "melody"),
    ("melody_down", "melody"),
    ("melody_high", "melody"),
    ("kick", "drums"),
    ("snare", "drums"),
    ("hihat", "drums"),
    ("crash", "drums"),
    ("strum", "texture"),
    ("noise", "texture"),
]


@dataclass
class SongArrays:
    features: np.ndarray  # (n_beats, n_features) bool
    descriptors: np.ndarray  # (n_beats, n_descriptors) int64
    beat_times: np.ndarray  # (n_beats,) float64 seconds
    downbeats: np.ndarray  # (n_beats,) bool


def _shift(x: np.ndarray, fill) -> np.ndarray:
    """x of the previous beat (fill for the first)."""
    return np.concatenate([[fill], x[:-1]])


def synthetic_song(seed: int, number: int, min_bars: int = 24, max_bars: int = 160) -> SongArrays:
    rng = np.random.default_rng([seed, number])
    meter = int(rng.choice([3, 4], p=[0.3, 0.7]))
    n_bars = int(rng.integers(min_bars, max_bars + 1))
    n = n_bars * meter
    key = int(rng.integers(12))
    beat = np.arange(n)
    bar, pos = beat // meter, beat % meter
    progs = [rng.choice(len(DEGREES), 4, replace=True) for _ in range(2)]
    section = (bar // 8) % 2  # A B A B ... sections of 8 bars
    degree = np.array([progs[s][b % 4] for s, b in zip(section, bar)])
    root = np.array([(key + DEGREES[d][0]) % 12 for d in degree])
    minor = np.array([DEGREES[d][1] is MINOR for d in degree])
    fifth_on = rng.random() < 0.5  # the bass alternates root and fifth, or stays on the root
    bass_fifth = fifth_on & (pos % 2 == 1)
    bass = 36 + (root + 7 * bass_fifth) % 12
    third = np.where(minor, 3, 4)
    pcset = (1 << root) | (1 << ((root + third) % 12)) | (1 << ((root + 7) % 12))
    motifs = [rng.integers(0, 12, size=meter) for _ in range(2)]  # semitones above the chord root per beat
    rests = [rng.random(meter) < 0.25 for _ in range(2)]
    offset = np.array([motifs[s][p] for s, p in zip(section, pos)])
    has_melody = ~np.array([rests[s][p] for s, p in zip(section, pos)])
    melody = np.where(has_melody, 60 + root + offset, -1)
    melody_shape = np.where(has_melody, 1 + section * 100 + pos * 10 + offset % 7, 0)  # transposition-invariant id
    rel_melody = np.where(has_melody, (melody - bass) % 12, 12)
    beat_shape = 1 + minor * 1000 + bass_fifth * 100 + rel_melody  # all notes relative to the bass
    descriptors = {
        "bass_pitch": bass,
        "pcset": pcset,
        "melody_pitch": melody,
        "melody_shape": melody_shape,
        "beat_shape": beat_shape,
        "bar_index": bar,
        "beat_in_bar": pos,
    }
    above_bass = np.stack([(pcset >> ((bass + k) % 12)) & 1 for k in range(1, 12)], axis=1).astype(bool)
    prev_melody = _shift(melody, -1)
    both = has_melody & (prev_melody >= 0)
    kick = (pos == 0) | ((meter == 4) & (pos == 2) & (rng.random() < 0.7))
    hihat_song = rng.random() < 0.6
    cols = [
        *(pos == k for k in range(4)),
        np.full(n, meter == 3),
        *above_bass.T,
        degree != _shift(degree, -1),
        minor,
        bass_fifth,
        has_melody,
        both & (melody > prev_melody),
        both & (melody < prev_melody),
        melody > 70,
        kick ^ (rng.random(n) < 0.03),
        (pos % 2 == 1) ^ (rng.random(n) < 0.03),
        np.full(n, hihat_song) ^ (rng.random(n) < 0.1),
        (bar % 8 == 0) & (pos == 0),
        (section == 1) & (pos == 0),
        rng.random(n) < 0.1,
    ]
    features = np.stack(cols, axis=1).astype(bool)
    tempo = 60.0 / rng.uniform(70, 160)
    return SongArrays(
        features=features,
        descriptors=np.stack([descriptors[name] for name in DESCRIPTOR_NAMES], axis=1).astype(np.int64),
        beat_times=beat * tempo,
        downbeats=pos == 0,
    )


class SyntheticStore:
    """In-memory stand-in for ``bat.store`` with ``n_songs`` synthetic songs (same reading interface)."""

    schema_version = "synthetic-1"

    def __init__(self, n_songs: int = 32, seed: int = 0, min_bars: int = 24, max_bars: int = 160):
        self.seed, self.min_bars, self.max_bars = seed, min_bars, max_bars
        self.feature_names = [name for name, _ in FEATURES]
        self.feature_groups = [group for _, group in FEATURES]
        self.descriptor_names = list(DESCRIPTOR_NAMES)
        n_beats = [len(self.song_arrays(i).downbeats) for i in range(n_songs)]
        self.songs = pd.DataFrame(
            {
                "content_hash": [hashlib.sha256(f"synthetic/{seed}/{i}".encode()).hexdigest() for i in range(n_songs)],
                "source": [f"synthetic:{seed}/{i}" for i in range(n_songs)],
                "n_beats": n_beats,
            }
        )

    def __len__(self) -> int:
        return len(self.songs)

    def song_arrays(self, i: int) -> SongArrays:
        return synthetic_song(self.seed, int(i), self.min_bars, self.max_bars)
