"""How madmom's audio downbeats and the transcribed notes share the choice of the bar (no audio needed)."""

from __future__ import annotations

import numpy as np

from bat.beats.audio_bars import AudioBarConfig, audio_bar_scores, combine_bars
from bat.beats.bars import BarHypotheses

LENGTHS = np.array([2, 2, 3, 3, 3, 4, 4, 4, 4])
PHASES = np.array([0, 1, 0, 1, 2, 0, 1, 2, 3])


def hypotheses(favourite: int, margin: float) -> BarHypotheses:
    """Note scores that prefer hypothesis ``favourite`` by ``margin`` over all the others."""
    scores = np.zeros(len(LENGTHS))
    scores[favourite] = margin
    return BarHypotheses(LENGTHS, PHASES, scores)


def waltz_probability(beats: int = 48, phase: int = 1) -> np.ndarray:
    """madmom hearing 3/4 with its downbeats on beats phase, phase + 3, ...: 0.8 there, 0.1 elsewhere."""
    return np.where((np.arange(beats) - phase) % 3 == 0, 0.8, 0.1)


def test_the_audio_likelihood_is_highest_for_the_bar_it_hears():
    scores = audio_bar_scores(hypotheses(0, 0.0), waltz_probability())
    assert (LENGTHS[np.argmax(scores)], PHASES[np.argmax(scores)]) == (3, 1)


def test_the_audio_decides_where_the_notes_barely_separate_the_bars():
    combined = combine_bars(hypotheses(favourite=5, margin=0.2), waltz_probability())  # notes: a weak 4/4
    assert (combined.choice.beats_per_bar, combined.choice.phase) == (3, 1)
    assert combined.decided_by == "audio" and combined.notes_share < 0.2 < combined.audio_share


def test_notes_that_clearly_prefer_a_bar_hold_it_against_the_audio():
    combined = combine_bars(hypotheses(favourite=5, margin=8.0), waltz_probability())
    assert (combined.choice.beats_per_bar, combined.choice.phase) == (4, 0) and combined.decided_by == "notes"
    agreeing = combine_bars(hypotheses(favourite=3, margin=1.0), waltz_probability())
    assert agreeing.decided_by == "notes+audio"


def test_a_zero_weight_leaves_the_notes_choice():
    combined = combine_bars(hypotheses(favourite=2, margin=0.1), waltz_probability(), AudioBarConfig(weight=0.0))
    assert (combined.choice.beats_per_bar, combined.choice.phase) == (3, 0) and combined.decided_by == "notes"
