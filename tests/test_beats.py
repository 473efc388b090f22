"""The beat grid must equal pretty_midi's get_beats/get_downbeats (the reference semantics) within 1 ms."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from bat.beats import beat_grid, notes_in_beats
from bat.ingest import load_midi
from tests.midi_builder import N, Piece


def _write(tmp_path, name, *, signatures, tempi, end_seconds, resolution=480):
    """A file with explicit tempo and meter maps, written with mido-level control through pretty_midi."""
    midi = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempi[0][1])
    for num, den, t in signatures:
        midi.time_signature_changes.append(pretty_midi.TimeSignature(num, den, t))
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(80, 60, 0.0, end_seconds))
    midi.instruments.append(inst)
    path = tmp_path / name
    midi.write(str(path))
    if len(tempi) > 1:  # pretty_midi writes one tempo; add changes with mido into track 0
        import mido

        mf = mido.MidiFile(str(path))
        track0 = mf.tracks[0]
        absolute, t = [], 0
        for msg in track0:
            t += msg.time
            absolute.append((t, msg))
        for seconds, qpm in tempi[1:]:
            tick = int(round(midi.time_to_tick(seconds)))
            absolute.append((tick, mido.MetaMessage("set_tempo", tempo=int(round(6e7 / qpm)), time=0)))
        absolute.sort(key=lambda item: (item[0], item[1].type == "end_of_track"))
        track0.clear()
        last = 0
        for tick, msg in absolute:
            track0.append(msg.copy(time=tick - last))
            last = tick
        mf.save(str(path))
    return path


CASES = {
    "plain_4_4": dict(signatures=[(4, 4, 0.0)], tempi=[(0, 120)], end_seconds=10.0),
    "no_signature": dict(signatures=[], tempi=[(0, 97)], end_seconds=7.3),
    "waltz": dict(signatures=[(3, 4, 0.0)], tempi=[(0, 150)], end_seconds=9.0),
    "compound_6_8": dict(signatures=[(6, 8, 0.0)], tempi=[(0, 90)], end_seconds=8.0),
    "twelve_eight": dict(signatures=[(12, 8, 0.0)], tempi=[(0, 100)], end_seconds=12.0),
    "five_four": dict(signatures=[(5, 4, 0.0)], tempi=[(0, 120)], end_seconds=8.0),
    "meter_changes": dict(signatures=[(4, 4, 0.0), (3, 4, 4.0), (6, 8, 7.0), (2, 2, 10.0)], tempi=[(0, 120)], end_seconds=14.0),
    "late_signature": dict(signatures=[(3, 4, 0.75)], tempi=[(0, 120)], end_seconds=6.0),
    "tempo_changes": dict(signatures=[(4, 4, 0.0)], tempi=[(0, 120), (3.1, 80), (6.0, 140.5)], end_seconds=12.0),
    "tempo_and_meter": dict(signatures=[(4, 4, 0.0), (7, 8, 4.0)], tempi=[(0, 100), (2.2, 132)], end_seconds=10.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_grid_equals_pretty_midi(tmp_path, name):
    path = _write(tmp_path, f"{name}.mid", **CASES[name])
    reference = pretty_midi.PrettyMIDI(str(path))
    grid = beat_grid(load_midi(path))
    expected_beats = reference.get_beats()
    assert grid.times.shape == expected_beats.shape
    assert np.abs(grid.times - expected_beats).max() < 1e-3
    np.testing.assert_allclose(grid.times[grid.downbeats], reference.get_downbeats(), atol=1e-3)


def test_bar_positions_follow_meter(tmp_path):
    path = _write(tmp_path, "changes.mid", **CASES["meter_changes"])
    grid = beat_grid(load_midi(path))
    # 4/4 for 4 s at 120 qpm = 2 bars of 4; then 3/4 for 3 s = 2 bars of 3; then 6/8: dotted-quarter beats
    assert list(grid.beat_in_bar[:14]) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 0, 1, 2]
    assert list(grid.numerator[:8]) == [4] * 8 and grid.numerator[8] == 3
    assert set(grid.beats_in_bar[grid.numerator == 6]) == {2}


def test_defaults_recorded_when_file_has_no_tempo_or_meter(tmp_path):
    import mido

    mf = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0), mido.Message("note_off", note=60, time=96 * 8)])
    mf.tracks.append(track)
    path = tmp_path / "bare.mid"
    mf.save(str(path))
    song = load_midi(path)
    assert song.defaults == ["time_signature=4/4", "tempo=120"]
    grid = beat_grid(song)
    reference = pretty_midi.PrettyMIDI(str(path))
    np.testing.assert_allclose(grid.times, reference.get_beats(), atol=1e-3)
    assert grid.times[1] == pytest.approx(0.5)
    assert grid.downbeats.sum() == 2


def test_notes_in_beats_counts_onsets_and_held_notes(tmp_path):
    piece = Piece(notes=[N(60, 0, 2.5), N(64, 1.5, 0.25), N(67, 3, 1)])
    song = load_midi(piece.write(tmp_path / "m.mid"))
    grid = beat_grid(song)
    members = notes_in_beats(song.notes, grid)
    pitches = lambda i: sorted(int(song.notes.pitch[k]) for k in members.of_beat(i)[0])  # noqa: E731
    assert pitches(0) == [60]
    assert pitches(1) == [60, 64]  # 60 sounds through, 64 starts at 1.5
    assert pitches(2) == [60]  # 60 ends at 2.5: still sounding in beat 2
    assert pitches(3) == [67]
    notes, onsets = members.of_beat(1)
    assert dict(zip(song.notes.pitch[notes].tolist(), onsets.tolist())) == {60: False, 64: True}


def test_a_tracked_beat_takes_in_onsets_played_just_ahead_of_it(tmp_path):
    """A tempo map's beat starts exactly at its time; a tracked one (``membership.EARLY_SHARE``) also takes the last
    eighth of the beat before it, so a kick 10 ms early is on its beat, not at the end of the previous one, and a
    note released in its first eighth is not held into it."""
    import dataclasses

    piece = Piece(notes=[N(36, 0, 0.5), N(38, 0.98, 0.5), N(42, 1.5, 0.25), N(45, 1.8, 0.1), N(40, 1.92, 0.05), N(48, 3, 1)])
    song = load_midi(piece.write(tmp_path / "m.mid"))  # 120 qpm: beats every 0.5 s; 45 is a 16th early, 40 a 32nd
    quantized = beat_grid(song)
    tracked = dataclasses.replace(quantized, source="madmom_midi")
    for grid, beat_of_38, beat_of_40 in ((quantized, 0, 1), (tracked, 1, 2)):
        members = notes_in_beats(song.notes, grid)
        first = members.onset
        beat_of = {int(song.notes.pitch[n]): int(b) for n, b in zip(members.note[first], members.beat[first])}
        assert beat_of == {36: 0, 38: beat_of_38, 42: 1, 45: 1, 40: beat_of_40, 48: 3}, grid.source
    members = notes_in_beats(song.notes, tracked)
    on = members.onset & (song.notes.pitch[members.note] == 38)
    assert members.position[on].tolist() == [0.0]  # early onsets sit at the beat's start
    # and a note released a hair after a tracked beat does not sound in it: 36 ends 10 ms after beat 1
    released = Piece(notes=[N(36, 0, 1.02), N(48, 3, 1)])
    song = load_midi(released.write(tmp_path / "released.mid"))
    for grid, held in ((beat_grid(song), True), (dataclasses.replace(beat_grid(song), source="madmom_midi"), False)):
        members = notes_in_beats(song.notes, grid)
        assert (1 in members.beat[song.notes.pitch[members.note] == 36].tolist()) == held, grid.source
