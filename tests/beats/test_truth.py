"""The true grid the trackers are scored against: pretty_midi's beats in full bars, partial bars carrying on."""

from __future__ import annotations

import numpy as np
import pretty_midi

from bat.ingest.midi import load_midi
from tests.beats.pieces import groove, hymn, jig, write
from tests.beats.truth import score_grid


def test_a_jigs_pickup_and_repeat_cut_bars_carry_on_its_dotted_quarter_beat(tmp_path):
    path = write(jig(parts=2, bars=8), tmp_path, "jig.mid")  # 120 qpm: a dotted quarter lasts 0.75 s
    beats, downbeats, beats_in_bar = score_grid(load_midi(path))
    np.testing.assert_allclose(beats[0], 0.25)  # the 1/8 pickup holds no beat: the first is the first bar's
    np.testing.assert_allclose(np.diff(beats), 0.75)  # straight through the 5/8 bar and the 1/8 after it
    assert downbeats.tolist() == [k % 2 == 0 for k in range(len(beats))] and set(beats_in_bar) == {2}
    # pretty_midi beats the 5/8 bar in eighths and starts a bar at the 1/8 pickup after the repeat
    reference = pretty_midi.PrettyMIDI(str(path))
    assert np.isclose(np.diff(reference.get_beats()), 0.25).any()
    assert len(reference.get_downbeats()) > downbeats.sum()


def test_full_bars_keep_pretty_midis_grid(tmp_path):
    path = write(groove(bars=8), tmp_path, "groove.mid")
    beats, downbeats, _ = score_grid(load_midi(path))
    reference = pretty_midi.PrettyMIDI(str(path))
    np.testing.assert_allclose(beats, reference.get_beats(), atol=1e-6)
    np.testing.assert_allclose(beats[downbeats], reference.get_downbeats(), atol=1e-6)


def test_a_pickup_beat_is_an_upbeat_not_a_bar(tmp_path):
    path = write(hymn(bars=4, qpm=60.0), tmp_path, "hymn.mid")  # a one-beat pickup, then 3/4
    beats, downbeats, _ = score_grid(load_midi(path))
    np.testing.assert_allclose(beats, np.arange(13.0))
    assert not downbeats[0] and downbeats[1::3].all() and downbeats.sum() == 4
