"""The melodic accent: notes the melody puts on the beat, and the tracker hearing them in running notes."""

from __future__ import annotations

import numpy as np
import pytest

from bat.beats.accent import ACCENT_FEATURES, AccentTrees, accent_features, accent_trees, downbeat_log_odds, melody_line, note_log_odds
from bat.beats.tracking import DEFAULT_TRACKING, TrackingConfig, track_notes
from bat.corpus.music21_corpus import Piece, convert_pieces
from bat.ingest.midi import load_midi
from bat.ingest.song import NoteArray
from tests.beats.performed import humanize
from tests.beats.pieces import f_measure

# Two tunes of Ryan's Mammoth Collection in the benchmark's held-out sample (never seen by bench/fit_accent.py):
# a jig in running eighths, and a reel (written 2/4) in running sixteenths
JIG = Piece("ryansMammoth/BoysOfBockhillJig.abc", "ryansMammoth", "BoysOfBockhillJig.mid")
REEL = Piece("ryansMammoth/RatCatchersReel.abc", "ryansMammoth", "RatCatchersReel.mid")


def notes_of(starts, pitches, length=0.25) -> NoteArray:
    starts = np.asarray(starts, np.float64)
    zeros = np.zeros(len(starts), np.int16)
    return NoteArray(starts, starts + length, np.asarray(pitches, np.int16), zeros + 80, zeros, zeros)


def test_a_chord_is_one_note_of_the_line_at_its_highest_pitch():
    notes = notes_of([0.0, 0.0, 0.01, 0.5, 1.0], [60, 67, 64, 62, 60])
    line = melody_line(notes)
    np.testing.assert_allclose(line.start, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(line.pitch, [67, 62, 60])
    np.testing.assert_array_equal(line.onset_of_note, [0, 0, 0, 1, 2])
    features = accent_features(line)
    assert features.shape == (3, len(ACCENT_FEATURES))
    assert features[2, ACCENT_FEATURES.index("degree_0")] == 1.0  # the last note is the tonic
    assert features[1, ACCENT_FEATURES.index("step_in")] == pytest.approx(-5 / 12)


def test_trees_go_left_at_or_below_the_threshold_and_sum_their_leaves():
    # one stump on feature 1 (threshold 0.5) and one tree that is a single leaf
    stump = dict(feature=[1, 0, 0], threshold=[0.5, 0, 0], left=[1, 0, 0], right=[2, 0, 0], value=[0.0, -1.0, 2.0], leaf=[False, True, True])
    single = dict(feature=[0, 0, 0], threshold=[0, 0, 0], left=[0, 0, 0], right=[0, 0, 0], value=[0.25, 0, 0], leaf=[True, True, True])
    trees = AccentTrees(**{name: np.array([stump[name], single[name]]) for name in stump}, baseline=0.1)
    log_odds = trees.log_odds(np.array([[9.0, 0.5], [9.0, 0.6], [-9.0, -3.0]]))
    np.testing.assert_allclose(log_odds, [0.1 - 1.0 + 0.25, 0.1 + 2.0 + 0.25, 0.1 - 1.0 + 0.25])


def test_the_shipped_trees_match_the_features():
    trees = accent_trees()
    assert trees.feature.max() < len(ACCENT_FEATURES) and trees.feature.shape[0] >= 100


@pytest.fixture(scope="module")
def tunes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tunes")
    summary = convert_pieces([JIG, REEL], folder)
    assert not summary.failed, summary.format()
    return {piece.path: folder / piece.path for piece in (JIG, REEL)}


@pytest.mark.parametrize("tune", [JIG.path, REEL.path])
def test_notes_on_the_beat_carry_more_accent_in_a_held_out_tune(tunes, tune, tmp_path):
    performance = humanize(tunes[tune], seed=0)
    path = tmp_path / "played.mid"
    performance.midi.write(str(path))
    notes = load_midi(path).notes
    log_odds = note_log_odds(notes)
    period = float(np.median(np.diff(performance.beats)))
    on_beat = np.abs(notes.start[:, None] - np.asarray(performance.beats)[None, :]).min(axis=1) < 0.12 * period
    assert 0.2 < on_beat.mean() < 0.6  # running notes: most of them fall between the beats
    assert auc(log_odds, on_beat) > 0.75


@pytest.mark.parametrize("tune", [JIG.path, REEL.path])
def test_the_tracker_hears_the_beat_of_running_notes(tunes, tune, tmp_path):
    """Every note of these tunes is equally loud and nearly all are equally long: without the melody's accent the
    tracker takes the jig an eighth off its beat or at the quarter, and the reel at a level 4:3 to it. Six
    performances of each, since one performance can still fool the tracker either way (measured: beat F, the jig
    0.52 without the accent and 0.87 with it, the reel 0.66 and 0.84)."""
    scores = []
    for seed in range(6):
        performance = humanize(tunes[tune], seed=seed)
        path = tmp_path / f"played_{seed}.mid"
        performance.midi.write(str(path))
        song = load_midi(path)
        tracked = track_notes(song)
        assert tracked.evidence["melody"] == 1.0
        without = track_notes(song, TrackingConfig(melodic_accent=0.0))
        scores.append([f_measure(performance.beats, tracked.times), f_measure(performance.downbeats, tracked.times[tracked.beat_in_bar == 0]),
                       f_measure(performance.beats, without.times)])
    beat, downbeat, beat_without = np.mean(scores, axis=0)
    assert DEFAULT_TRACKING.melodic_accent > 0
    assert beat >= 0.75 and downbeat >= 0.7
    assert beat >= beat_without + 0.15


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC as the chance that a positive outscores a negative (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    return float(((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()))


def test_true_downbeats_carry_the_higher_downbeat_log_odds(tunes, tmp_path):
    performance = humanize(tunes[JIG.path], seed=0)
    path = tmp_path / "played.mid"
    performance.midi.write(str(path))
    beats = np.asarray(performance.beats)
    log_odds = downbeat_log_odds(load_midi(path).notes, beats)
    downbeat = np.abs(beats[:, None] - np.asarray(performance.downbeats)[None, :]).min(axis=1) < 0.05
    assert log_odds.shape == beats.shape and 0.3 < downbeat.mean() < 0.7
    assert auc(log_odds, downbeat) > 0.75


def test_trees_give_the_same_log_odds_in_chunks():
    features = np.random.default_rng(1).normal(size=(50, len(ACCENT_FEATURES)))
    trees = accent_trees()
    np.testing.assert_allclose(trees.log_odds(features, chunk=7), trees.log_odds(features))
