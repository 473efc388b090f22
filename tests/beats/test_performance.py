"""Quantized or performance: the tempo map of a sequenced file is trusted, a played one's is not."""

from __future__ import annotations

from bat.beats.performance import detect_performance
from bat.ingest.midi import load_midi
from tests.beats.performed import humanize
from tests.beats.pieces import groove, hymn, write


def test_quantized_pieces_keep_their_tempo_map(tmp_path):
    for name, piece in (("groove.mid", groove()), ("hymn.mid", hymn())):
        evidence = detect_performance(load_midi(write(piece, tmp_path, name)))
        assert evidence.quantized, evidence.describe()
        assert evidence.on_grid == 1.0 and evidence.confidence == 1.0


def test_humanized_pieces_are_performances(tmp_path):
    for seed, (name, piece) in enumerate((("groove.mid", groove()), ("hymn.mid", hymn()))):
        played = tmp_path / f"played_{name}"
        humanize(write(piece, tmp_path, name), seed=seed).midi.write(str(played))
        evidence = detect_performance(load_midi(played))
        assert not evidence.quantized, evidence.describe()
        assert evidence.on_grid < 0.45 and evidence.confidence > 0.5
        assert "performance: on_grid=" in evidence.describe()


def test_a_handful_of_notes_is_not_called_a_performance(tmp_path):
    from tests.midi_builder import N, Piece

    path = Piece(notes=[N(60, 0.013 * k + 0.37 * k) for k in range(6)]).write(tmp_path / "few.mid")
    assert detect_performance(load_midi(path)).quantized  # too little evidence: keep the file's own grid
