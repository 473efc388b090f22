"""Pop-style multitrack MIDI for benchmarks: drums (16th hats), bass, chords, melody, pad; ~40 KB a file.

Lakh MIDI is mostly such files, so this is what parse and featurize speed must be measured on.
"""

from __future__ import annotations

import random
from pathlib import Path

import pretty_midi

PROGRESSIONS = ([0, 5, 7, 0], [0, 9, 5, 7], [9, 5, 0, 7], [0, 7, 9, 5], [2, 7, 0, 0])
MAJOR = (0, 2, 4, 5, 7, 9, 11)


def pop_song(seed: int, bars: int = 96) -> pretty_midi.PrettyMIDI:
    rng = random.Random(seed)
    qpm = rng.choice([84, 96, 104, 112, 120, 128, 140])
    key = rng.randrange(12)
    beat = 60.0 / qpm
    midi = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    drums = pretty_midi.Instrument(0, is_drum=True)
    bass = pretty_midi.Instrument(rng.choice([33, 34, 38]))
    keys = pretty_midi.Instrument(rng.choice([0, 4, 24, 29]))
    lead = pretty_midi.Instrument(rng.choice([0, 56, 65, 73, 80]))
    pad = pretty_midi.Instrument(rng.choice([48, 89, 50]))
    progression = rng.choice(PROGRESSIONS)

    def add(inst, pitch, start, length, velocity=90):
        inst.notes.append(pretty_midi.Note(velocity + rng.randint(-10, 10), pitch, start, start + length))

    for bar in range(bars):
        t0 = bar * 4 * beat
        root = key + progression[bar % 4]
        for k in range(16):  # 16th hats, kick on 1 and 3, snare on 2 and 4, crash every 8 bars
            add(drums, 42, t0 + k * beat / 4, 0.05, 70)
        for b in (0, 2):
            add(drums, 36, t0 + b * beat, 0.1, 100)
        for b in (1, 3):
            add(drums, 38, t0 + b * beat, 0.1, 100)
        if bar % 8 == 0:
            add(drums, 49, t0, 0.3, 110)
        for e in range(8):  # bass in 8ths
            add(bass, 36 + root % 12, t0 + e * beat / 2, beat / 2 * 0.9)
        for half in (0, 2):  # chords on beats 1 and 3
            for interval in (0, 4, 7, 12):
                add(keys, 60 + (root + interval) % 12, t0 + half * beat, 2 * beat * 0.95, 70)
        for interval in (0, 7, 16):
            add(pad, 48 + (root + interval) % 24, t0, 4 * beat, 50)
        position = 0.0
        while position < 4:  # a melody of 8ths and quarters on the scale
            length = rng.choice([0.5, 0.5, 1.0])
            if rng.random() < 0.85:
                add(lead, 72 + (key + rng.choice(MAJOR)) % 12, t0 + position * beat, length * beat * 0.9, 95)
            position += length
    midi.instruments.extend([drums, bass, keys, lead, pad])
    return midi


def write_pop_songs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        path = folder / f"pop_{seed + k:05d}.mid"
        if not path.exists():
            pop_song(seed + k).write(str(path))
        paths.append(path)
    return paths
