"""Beats and bars tracked on humanized performances land on the known truth."""

from __future__ import annotations

import numpy as np
import pytest

from bat.beats.select import select_grid
from bat.featurize import featurize_path
from bat.ingest.midi import load_midi
from tests.beats.performed import humanize
from tests.beats.pieces import f_measure, groove, hymn, jig, march, write

PIECES = {"groove": groove, "hymn": hymn, "march": march, "jig": lambda: jig(parts=3)}


@pytest.mark.parametrize("name,seed", [("groove", 3), ("hymn", 5), ("march", 1), ("jig", 2)])
def test_tracked_grid_matches_the_performed_beats(tmp_path, name, seed):
    """A single line (a 2/4 march, a 6/8 jig with music21's partial bars) as well as textures: the beat
    level, the bar length (2/4 and 6/8, not 4/4 and 12/8) and the phase behind a pickup."""
    piece = PIECES[name]()
    performance = humanize(write(piece, tmp_path, f"{name}.mid"), seed=seed)
    path = tmp_path / f"played_{name}.mid"
    performance.midi.write(str(path))
    choice = select_grid(load_midi(path))
    grid = choice.grid
    assert grid.source == "madmom_midi"
    assert f_measure(performance.beats, grid.times) >= 0.9
    assert f_measure(performance.downbeats, grid.times[grid.downbeats]) >= 0.8
    expected = {"groove": (4, 4), "hymn": (3, 4), "march": (2, 4), "jig": (6, 8)}[name]
    assert (int(grid.numerator[0]), int(grid.denominator[0])) == expected
    assert 0.0 < choice.confidence <= 1.0 and "madmom_midi meter=" in choice.evidence


def test_featurizer_uses_the_tracked_grid_coherently(tmp_path):
    performance = humanize(write(groove(bars=16), tmp_path, "groove.mid"), seed=1)
    path = tmp_path / "played.mid"
    performance.midi.write(str(path))
    song = featurize_path(path)
    assert song.beat_source == "madmom_midi"
    assert song.meter == "4/4" and song.meters == ["4/4"]
    assert song.features.shape[0] == song.n_beats == song.beat_times.size
    assert np.all(np.diff(song.beat_times) > 0)
    assert song.beat_times[0] <= 0.5 and song.beat_times[-1] >= song.duration - 1.5  # the grid covers the song
    assert 0.0 < song.beat_confidence <= 1.0 and song.grid_evidence.startswith("performance:")


def test_quantized_file_keeps_the_exact_tempo_map_grid(tmp_path):
    import pretty_midi

    path = write(hymn(), tmp_path, "hymn.mid")
    song = featurize_path(path)
    assert song.beat_source == "tempo_map" and song.grid_evidence.startswith("quantized:")
    np.testing.assert_allclose(song.beat_times, pretty_midi.PrettyMIDI(str(path)).get_beats(), atol=1e-6)
