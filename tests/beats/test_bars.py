"""Bars over beats: what tells a melody from a texture, and a bar's rhythm repeating in the next."""

from __future__ import annotations

import numpy as np

from bat.beats.bars import BarCues, bar_hypotheses, bar_repetition, downbeat_evidence, is_melody
from bat.beats.tracking import note_activation
from bat.ingest.midi import load_midi
from tests.beats.pieces import SCALE, groove, hymn, march, write
from tests.midi_builder import N, Piece


def waltz(bars: int = 16) -> Piece:
    """A 3/4 tune, one line: a half note and a quarter in every bar, the pitches wandering."""
    piece = Piece(qpm=120.0, time_signatures=[(3, 4, 0.0)])
    for bar in range(bars):
        piece.notes += [N(SCALE[(bar * 3) % 7], 3 * bar, 2), N(SCALE[(bar * 5 + 2) % 7], 3 * bar + 2, 1)]
    return piece


def test_a_single_line_is_a_melody_and_chords_or_drums_are_not(tmp_path):
    assert is_melody(load_midi(write(march(bars=8), tmp_path, "march.mid")))
    assert not is_melody(load_midi(write(hymn(bars=8), tmp_path, "hymn.mid")))
    assert not is_melody(load_midi(write(groove(bars=8), tmp_path, "groove.mid")))


def test_a_waltz_repeats_its_rhythm_every_three_beats_and_gets_bars_of_three(tmp_path):
    song = load_midi(write(waltz(), tmp_path, "waltz.mid"))
    beats = np.arange(48) * 0.5  # the quarter notes at 120 qpm
    repetition = bar_repetition(note_activation(song), beats, 100, (2, 3, 4))
    assert repetition[3] > 0.95 and repetition[3] > repetition[2] + 0.1 and repetition[3] > repetition[4] + 0.1
    bar = bar_hypotheses(downbeat_evidence(song, beats), BarCues(repetition=repetition), (2, 3, 4), melody=True).best()
    assert (bar.beats_per_bar, bar.phase) == (3, 0)
