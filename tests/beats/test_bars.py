"""Bars over beats: what tells a melody from a texture, and a bar's rhythm repeating in the next."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bat.beats.bars import MELODY_BARS, BarCues, bar_hypotheses, bar_repetition, downbeat_evidence, is_melody
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


def test_a_line_whose_notes_ring_into_the_next_is_a_melody_and_one_over_held_notes_is_not(tmp_path):
    """A transcribed fiddle's notes ring on past the next onset (here by 0.15 s); a melody over an accompaniment
    has notes held across several of its onsets, even when none starts with a melody note."""
    ringing = Piece(notes=[N(SCALE[k % 7], k, 1.3) for k in range(32)])
    assert is_melody(load_midi(write(ringing, tmp_path, "ringing.mid")))
    accompanied = Piece(notes=[N(SCALE[k % 7] + 12, k, 1.0) for k in range(32)] + [N(SCALE[0] - 12, 4 * bar + 0.5, 3.0) for bar in range(8)])
    assert not is_melody(load_midi(write(accompanied, tmp_path, "accompanied.mid")))


def test_a_waltz_repeats_its_rhythm_every_three_beats_and_gets_bars_of_three(tmp_path):
    song = load_midi(write(waltz(), tmp_path, "waltz.mid"))
    beats = np.arange(48) * 0.5  # the quarter notes at 120 qpm
    repetition = bar_repetition(note_activation(song), beats, 100, (2, 3, 4))
    assert repetition[3] > 0.95 and repetition[3] > repetition[2] + 0.1 and repetition[3] > repetition[4] + 0.1
    bar = bar_hypotheses(downbeat_evidence(song, beats), BarCues(repetition=repetition), (2, 3, 4), melody=True).best()
    assert (bar.beats_per_bar, bar.phase) == (3, 0)


def test_a_melodys_downbeat_log_odds_move_the_bar_phase_and_not_its_length():
    """Flat evidence, bars of two: the phase goes where the melody's downbeat log-odds point, and a texture's
    weights (no melodic downbeat term) do not read them."""
    evidence = np.ones((32, 5))
    melodic = np.where(np.arange(32) % 2 == 1, 1.0, -1.0)
    cues = BarCues(melodic_downbeat=melodic)
    melody = bar_hypotheses(evidence, cues, (2,), melody=True)
    assert melody.best().phase == 1
    texture = bar_hypotheses(evidence, cues, (2,), melody=False)
    np.testing.assert_array_equal(texture.scores, bar_hypotheses(evidence, BarCues(), (2,), melody=False).scores)
    without = bar_hypotheses(evidence, BarCues(), (2, 3, 4), melody=True).scores
    with_cue = bar_hypotheses(evidence, BarCues(melodic_downbeat=np.random.default_rng(0).normal(size=32)), (2, 3, 4), melody=True)
    for length in (2, 3, 4):  # per bar length, the term sums to zero over the phases: it favours no length
        same = with_cue.lengths == length
        assert abs((with_cue.scores[same] - without[same]).sum()) < 1e-9


def test_where_a_melodys_first_note_lands_depends_on_the_bar_length():
    """A melody whose first note lands on a beat of its own (no fraction early) starts a bar of two there, but is
    more often the upbeat of a bar of four: flat evidence, the first note on beat 3, so bars of two start on beat
    3 (phase 1) and bars of four on beat 4 (phase 0). A texture's weights see the downbeat first there too."""
    evidence = np.ones((32, 5))
    cues = BarCues(first_beat=3)
    assert bar_hypotheses(evidence, cues, (2,), melody=True).best().phase == 1
    assert bar_hypotheses(evidence, cues, (4,), melody=True).best().phase == 0
    assert bar_hypotheses(evidence, cues, (4,), melody=False).best().phase == 3


def test_the_first_notes_weight_is_read_at_its_position_in_each_hypothesis_bar():
    """Weights that favour only the second beat of a bar of three put the first note (beat 5) there: phase 1."""
    weights = replace(MELODY_BARS, first_note={2: np.zeros(2), 3: np.array([0.0, 2.0, 0.0]), 4: np.zeros(4)},
                      last_note={length: np.zeros(length) for length in (2, 3, 4)}, melodic_downbeat=0.0)
    hypotheses = bar_hypotheses(np.ones((30, 5)), BarCues(first_beat=5), (3,), weights=weights)
    assert hypotheses.best().phase == 1
    np.testing.assert_allclose(np.sort(hypotheses.scores)[:2], hypotheses.best().score - 2.0)
