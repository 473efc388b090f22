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


SCALE = (62, 64, 66, 67, 69, 71, 73, 74)  # D major


def march(bars: int = 24, qpm: float = 110.0) -> Piece:
    """A 2/4 tune, one line, with an eighth-note pickup: quarter, two eighths | quarter, quarter, a half
    note closing every fourth bar."""
    piece = Piece(qpm=qpm, time_signatures=[(1, 8, 0.0), (2, 4, 0.5)])
    piece.notes.append(N(SCALE[4], 0.0, 0.5))
    for bar in range(bars):
        t0 = 0.5 + 2 * bar
        step = (bar * 3) % 5
        if bar % 4 == 3:
            piece.notes += [N(SCALE[step], t0, 1.5, velocity=85), N(SCALE[4], t0 + 1.5, 0.5)]
        elif bar % 2 == 0:
            piece.notes += [N(SCALE[step + 2], t0, 1, velocity=85), N(SCALE[step + 1], t0 + 1, 0.5), N(SCALE[step], t0 + 1.5, 0.5)]
        else:
            piece.notes += [N(SCALE[step], t0, 1, velocity=85), N(SCALE[step + 2], t0 + 1, 1)]
    return piece


def jig(parts: int = 2, bars: int = 8, qpm: float = 120.0) -> Piece:
    """A 6/8 jig written as music21 writes an ABC tune with repeats: a 1/8 pickup bar, then in each part
    ``bars`` - 1 full bars and a 5/8 bar cut by the repeat sign, whose missing eighth is the next pickup
    (another 1/8 bar). A dotted quarter opens each bar, three eighths answer it."""
    signatures = [(1, 8, 0.0)]
    piece = Piece(qpm=qpm)
    piece.notes.append(N(SCALE[4], 0.0, 0.5))
    t = 0.5
    for part in range(parts):
        signatures.append((6, 8, t))
        for bar in range(bars):
            step = (bar + part) % 4  # a melody that climbs over four bars: no two-bar (12/8) alternation
            last = bar == bars - 1
            if last:
                signatures.append((5, 8, t))
                piece.notes += [N(SCALE[step + 1], t, 1.0, velocity=85), N(SCALE[step], t + 1.0, 0.5), N(SCALE[0], t + 1.5, 1.0)]
                t += 2.5
                if part < parts - 1:
                    signatures.append((1, 8, t))
                    piece.notes.append(N(SCALE[4], t, 0.5))
                    t += 0.5
            else:
                piece.notes += [N(SCALE[step + 2], t, 1.5, velocity=85)]
                piece.notes += [N(SCALE[step + 3 - k], t + 1.5 + 0.5 * k, 0.5, velocity=80) for k in range(3)]
                t += 3.0
    piece.time_signatures = signatures
    return piece
