"""Hand-built quantized pieces for the performance tests, and a scorer against known beats."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.midi_builder import N, Piece

CHORDS = ([48, 60, 64, 67], [53, 60, 65, 69], [55, 59, 62, 67], [48, 60, 64, 67])  # I IV V I


def groove(bars: int = 24, qpm: float = 104.0) -> Piece:
    """Pop-style: kick on 1 and 3, snare on 2 and 4, 8th hats, 8th bass, a chord per bar, a melody."""
    piece = Piece(qpm=qpm)
    for bar in range(bars):
        t0 = 4 * bar
        chord = CHORDS[bar % 4]
        piece.drums += [(36, t0), (36, t0 + 2), (38, t0 + 1), (38, t0 + 3)] + [(42, t0 + k / 2) for k in range(8)]
        piece.notes += [N(chord[0] - 12, t0 + k / 2, 0.45, program=33) for k in range(8)]
        piece.notes += [N(p, t0, 3.8, program=0, velocity=70) for p in chord[1:]]
        piece.notes += [N(72 + (bar * 5 + k * 2) % 7, t0 + k, 0.9, program=73, velocity=90) for k in (0, 1, 2, 3)]
    return piece


def hymn(bars: int = 16, qpm: float = 90.0) -> Piece:
    """Chorale-like 3/4 with a one-beat pickup: four voices in quarters, a half note closing each bar."""
    piece = Piece(qpm=qpm, time_signatures=[(1, 4, 0.0), (3, 4, 1.0)])  # the pickup as a short bar, as music21 writes it
    piece.notes += [N(p, 0, 1) for p in (55, 62, 67, 71)]
    for bar in range(bars):
        t0 = 1 + 3 * bar
        chord = CHORDS[bar % 4]
        piece.notes += [N(p, t0, 2, velocity=85) for p in chord]  # long notes on the downbeat
        piece.notes += [N(p + 2 * (bar % 2), t0 + 2, 1, velocity=70) for p in chord]
    return piece


def write(piece: Piece, folder: Path, name: str) -> Path:
    return piece.write(folder / name)


def f_measure(reference: np.ndarray, estimate: np.ndarray) -> float:
    """mir_eval's beat F-measure (±70 ms), with its usual trimming of the first 5 s."""
    import mir_eval

    return float(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(reference), mir_eval.beat.trim_beats(estimate)))
