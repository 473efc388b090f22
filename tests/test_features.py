"""Every feature has a known answer on a hand-built MIDI file.

Each case names a piece, a beat, features that must be on there and features that must be off. The last
test checks that every feature of the registry is turned on by at least one case, so a new feature cannot
land without its own known answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from bat.featurize import featurize_path
from bat.features.registry import FEATURE_NAMES
from tests.midi_builder import N, Piece


def _chords(*voicings) -> list[N]:
    return [N(p, beat, 1) for beat, chord in enumerate(voicings) for p in chord]


PIECES: dict[str, Piece] = {
    "bars_4_4": Piece(notes=[N(60, b, 1) for b in range(12)]),
    "bars_5_4": Piece(notes=[N(60, b, 1) for b in range(10)], time_signatures=[(5, 4, 0)]),
    "bars_3_4": Piece(notes=[N(60, b, 1) for b in range(6)], time_signatures=[(3, 4, 0)]),
    "bars_6_8": Piece(notes=[N(60, b, 1) for b in range(12)], time_signatures=[(6, 8, 0)]),
    "meter_change": Piece(notes=[N(60, b, 1) for b in range(10)], time_signatures=[(4, 4, 0), (3, 4, 4)]),
    "pickup": Piece(notes=[N(60, b, 1) for b in range(9)], time_signatures=[(1, 4, 0), (4, 4, 1)]),
    "chords": Piece(
        notes=_chords(
            (48, 52, 55), (48, 52, 55), (52, 55, 60), (55, 60, 64), (57, 60, 64), (59, 62, 65), (48, 52, 56),
            (43, 47, 50, 53), (48, 52, 55, 59), (45, 48, 52, 55), (47, 50, 53, 57), (47, 50, 53, 56),
            (48, 50, 55), (48, 53, 55), (48, 55), (41, 43, 47, 50), (48,), (48, 49, 50, 51, 52),
            (48, 60, 64, 67), (47,),
        )
        + [N(60, 20, 1), N(36, 20.5, 0.5)]
    ),
    "melody": Piece(
        notes=[N(36, b, 1) for b in range(15)]
        + [N(p, b, 1) for b, p in enumerate([60, 62, 60, 64, 60, 67, 60, 69, 60, 72, 60, 60])]
        + [N(60, 12, 0.5), N(62, 12.5, 0.5)]
        + [N(64, 13, 1 / 3), N(62, 13 + 1 / 3, 1 / 3), N(60, 13 + 2 / 3, 1 / 3)]
        + [N(60 + k, 14 + 0.2 * k, 0.2) for k in range(5)]
        + [N(36, 15, 2), N(67, 15, 2)]
    ),
    "above_bass": Piece(notes=[N(48, b, 1) for b in range(12)] + [N(60 + b, b, 1) for b in range(12)]),
    "texture": Piece(
        notes=[N(p, 0, 1) for p in (48, 52, 55)]
        + [N(p, 1 + 0.04 * k, 1 - 0.04 * k) for k, p in enumerate((48, 52, 55, 60))]
        + [N(p, 2 + 0.25 * k, 0.25) for k, p in enumerate((48, 52, 55, 60))]
        + [N(48, 3, 3), N(52, 4.5, 0.5)]
        + [N(60, 7, 0.5)]
        + [N(p, 8, 1) for p in (48, 50, 52, 53, 55, 57, 59, 60)]
        + [N(60, 9 + k / 3, 1 / 3) for k in range(3)]
        + [N(60, 10, 1, velocity=127), N(60, 11, 1, velocity=20)]
        + [N(60, b, 1) for b in range(12, 20)]
    ),
    "drums": Piece(
        notes=[N(60, b, 1) for b in range(8)],
        drums=[(36, 0), (49, 0), (42, 0), (38, 1), (42, 1), (42, 1.5), (36, 2.5), (42, 2), (42, 2 + 1 / 3),
               (42, 2 + 2 / 3), (42, 3), (42, 3.25), (42, 3.5), (42, 3.75), (46, 4), (51, 4), (45, 5), (47, 5.5),
               (56, 6)] + [(42, 7 + k / 8) for k in range(8)],
    ),
    "instruments": Piece(
        notes=[N(60, k, 1, program=8 * k + 1) for k in range(16)] + [N(p, 16, 1, program=g) for p, g in ((48, 0), (55, 24), (64, 40))]
    ),
}

CASES: list[tuple[str, int, set[str], set[str]]] = [
    # meter
    ("bars_4_4", 0, {"downbeat", "bar_quarter_1", "bar_first_half", "meter_duple", "bar_even", "first_bar"}, {"beat_2", "last_bar", "short_bar"}),
    ("bars_4_4", 1, {"beat_2", "bar_quarter_2", "bar_first_half"}, {"downbeat", "beat_3"}),
    ("bars_4_4", 2, {"beat_3", "bar_quarter_3"}, {"bar_first_half", "last_beat_of_bar"}),
    ("bars_4_4", 3, {"beat_4", "bar_quarter_4", "last_beat_of_bar"}, {"beat_5_plus"}),
    ("bars_4_4", 4, {"downbeat"}, {"bar_even", "first_bar", "meter_change"}),
    ("bars_4_4", 11, {"last_bar", "bar_even", "last_beat_of_bar"}, {"first_bar"}),
    ("bars_5_4", 4, {"beat_5_plus", "meter_irregular", "last_beat_of_bar"}, {"meter_duple", "downbeat"}),
    ("bars_3_4", 3, {"meter_triple", "downbeat"}, {"meter_duple", "meter_compound"}),
    ("bars_6_8", 1, {"meter_compound", "last_beat_of_bar", "beat_2"}, {"meter_triple", "meter_duple"}),
    ("meter_change", 4, {"meter_change", "meter_triple", "downbeat"}, {"meter_duple"}),
    ("meter_change", 5, {"meter_change"}, set()),
    ("meter_change", 7, {"downbeat"}, {"meter_change"}),
    ("pickup", 0, {"short_bar", "downbeat", "first_bar"}, set()),
    ("pickup", 1, {"downbeat"}, {"short_bar", "first_bar"}),
    # harmony
    ("chords", 0, {"bass_present", "bass_onset_on_beat", "interval_4", "interval_7", "pcs_3", "chord_major", "root_in_bass", "harmony_change"},
     {"chord_minor", "third_in_bass", "interval_3", "same_pcset_as_previous", "octave_doubling", "bass_onset_off_beat"}),
    ("chords", 1, {"same_pcset_as_previous", "same_bass_as_previous"}, {"harmony_change", "bass_step_up"}),
    ("chords", 2, {"third_in_bass", "chord_major", "interval_3", "interval_8", "bass_leap_up", "harmony_change"}, {"root_in_bass"}),
    ("chords", 3, {"fifth_in_bass", "chord_major", "interval_5", "interval_9"}, {"root_in_bass", "third_in_bass"}),
    ("chords", 4, {"chord_minor", "root_in_bass", "bass_step_up"}, {"chord_major"}),
    ("chords", 5, {"chord_diminished", "interval_6"}, {"chord_minor", "chord_major"}),
    ("chords", 6, {"chord_augmented", "bass_leap_down"}, {"chord_major"}),
    ("chords", 7, {"chord_dominant7", "interval_10", "pcs_4", "root_in_bass"}, {"chord_major7", "chord_minor7"}),
    ("chords", 8, {"chord_major7", "interval_11", "bass_fifth_motion", "bass_leap_up"}, {"chord_dominant7"}),
    ("chords", 9, {"chord_minor7", "root_in_bass"}, {"third_in_bass"}),
    ("chords", 10, {"chord_half_diminished7"}, {"chord_diminished7"}),
    ("chords", 11, {"chord_diminished7"}, {"chord_half_diminished7"}),
    ("chords", 12, {"chord_sus2", "interval_2"}, {"chord_major", "chord_minor"}),
    ("chords", 13, {"chord_sus4", "interval_5"}, {"chord_major"}),
    ("chords", 14, {"chord_power", "pcs_2"}, {"chord_major", "chord_sus2"}),
    ("chords", 15, {"seventh_in_bass", "chord_dominant7"}, {"root_in_bass"}),
    ("chords", 16, {"pcs_1", "melody_is_bass"}, {"pcs_2", "chord_power"}),
    ("chords", 17, {"pcs_5_plus", "interval_1"}, {"pcs_4"}),
    ("chords", 18, {"octave_doubling"}, set()),
    ("chords", 19, {"bass_step_down"}, {"bass_leap_down"}),
    ("chords", 20, {"bass_onset_off_beat"}, {"bass_onset_on_beat"}),
    # melody
    ("melody", 0, {"melody_present", "melody_onsets_1", "melody_above_bass_0"}, {"melody_is_bass", "melody_unison"}),
    ("melody", 1, {"melody_step_up", "melody_above_bass_2"}, {"melody_step_down"}),
    ("melody", 2, {"melody_step_down"}, {"melody_step_up"}),
    ("melody", 3, {"melody_third_up", "melody_above_bass_4"}, set()),
    ("melody", 4, {"melody_third_down"}, set()),
    ("melody", 5, {"melody_fourth_fifth_up", "melody_above_bass_7"}, set()),
    ("melody", 6, {"melody_fourth_fifth_down"}, set()),
    ("melody", 7, {"melody_sixth_seventh_up", "melody_above_bass_9"}, set()),
    ("melody", 8, {"melody_sixth_seventh_down"}, set()),
    ("melody", 9, {"melody_octave_plus_up"}, {"melody_unison"}),
    ("melody", 10, {"melody_octave_plus_down"}, set()),
    ("melody", 11, {"melody_unison"}, {"melody_step_up", "melody_step_down"}),
    ("melody", 12, {"melody_onsets_2", "melody_rises_in_beat"}, {"melody_onsets_1", "melody_falls_in_beat"}),
    ("melody", 13, {"melody_onsets_3_4", "melody_falls_in_beat", "triplet"}, {"melody_rises_in_beat"}),
    ("melody", 14, {"melody_onsets_5_plus"}, {"melody_onsets_3_4"}),
    ("melody", 16, {"melody_sustained"}, {"melody_present"}),
    *[("above_bass", k, {f"melody_above_bass_{k}"}, {f"melody_above_bass_{(k + 1) % 12}"}) for k in range(12)],
    # texture
    ("texture", 0, {"block_chord", "onsets_2_3", "onset_16th_1"}, {"strum", "arpeggio", "held_from_previous"}),
    ("texture", 1, {"strum", "onsets_4_7"}, {"block_chord", "arpeggio"}),
    ("texture", 2, {"arpeggio", "onset_16th_1", "onset_16th_2", "onset_16th_3", "onset_16th_4"}, {"block_chord", "strum"}),
    ("texture", 3, {"long_note", "onsets_1"}, {"held_from_previous"}),
    ("texture", 4, {"held_from_previous", "syncopated", "onset_16th_3"}, {"onset_16th_1", "long_note"}),
    ("texture", 5, {"onsets_0", "held_from_previous"}, {"silence", "syncopated"}),
    ("texture", 6, {"silence", "onsets_0"}, {"held_from_previous", "bass_present"}),
    ("texture", 7, {"all_released"}, {"long_note"}),
    ("texture", 0, set(), {"all_released"}),
    ("texture", 8, {"onsets_8_plus", "block_chord"}, {"onsets_4_7"}),
    ("texture", 9, {"triplet"}, {"onset_16th_2"}),
    ("texture", 10, {"accent"}, {"soft"}),
    ("texture", 11, {"soft"}, {"accent"}),
    # drums
    ("drums", 0, {"drums_present", "kick", "kick_on_beat", "crash", "hihat_closed_1"}, {"snare", "kick_off_beat", "fill"}),
    ("drums", 1, {"snare", "snare_on_beat", "hihat_closed_2"}, {"kick", "hihat_closed_1"}),
    ("drums", 2, {"kick_off_beat", "hihat_closed_3"}, {"kick_on_beat"}),
    ("drums", 3, {"hihat_closed_4_plus"}, {"hihat_open"}),
    ("drums", 4, {"hihat_open", "ride"}, {"hihat_closed_1"}),
    ("drums", 5, {"toms", "fill"}, {"snare"}),
    ("drums", 6, {"percussion_other"}, {"toms"}),
    ("drums", 7, {"drum_hits_8_plus", "hihat_closed_4_plus"}, set()),
    ("bars_4_4", 0, set(), {"drums_present"}),
    # instruments
    *[("instruments", k, {f"family_{name}"}, set()) for k, name in enumerate(
        ("piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass", "reed", "pipe",
         "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive", "sound_effects"))],
    ("instruments", 1, {"new_family_enters"}, {"family_piano", "instruments_3_plus"}),
    ("instruments", 16, {"instruments_3_plus", "family_piano", "family_guitar", "family_strings"}, set()),
]


@pytest.fixture(scope="module")
def featurized(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pieces")
    return {name: featurize_path(piece.write(folder / f"{name}.mid")) for name, piece in PIECES.items()}


@pytest.mark.parametrize("piece, beat, on, off", CASES, ids=[f"{c[0]}-{c[1]}-{min(c[2] or c[3])}" for c in CASES])
def test_known_answer(featurized, piece, beat, on, off):
    song = featurized[piece]
    active = {song.feature_names[j] for j in np.flatnonzero(song.features[beat])}
    assert on <= active, f"expected on: {sorted(on - active)}; active: {sorted(active)}"
    assert not (off & active), f"expected off: {sorted(off & active)}"


def test_every_feature_has_a_known_answer():
    covered = set().union(*(on for _, _, on, _ in CASES))
    assert set(FEATURE_NAMES) - covered == set()


def test_no_feature_reads_absolute_pitch(featurized, tmp_path):
    """Transposing a piece leaves every feature unchanged (descriptors carry the pitch, features don't)."""
    for name in ("chords", "melody", "texture"):
        piece = PIECES[name]
        moved = Piece(notes=[N(n.pitch + 5, n.beat, n.length, n.program, n.velocity) for n in piece.notes],
                      drums=piece.drums, time_signatures=piece.time_signatures)
        song = featurize_path(moved.write(tmp_path / f"{name}.mid"))
        np.testing.assert_array_equal(song.features, featurized[name].features)


def test_descriptors_carry_pitch_and_shapes_are_transposition_invariant(featurized, tmp_path):
    from bat.features.descriptors import DESCRIPTOR_NAMES

    piece = PIECES["melody"]
    moved = Piece(notes=[N(n.pitch + 2, n.beat, n.length) for n in piece.notes])
    original, song = featurized["melody"].descriptors, featurize_path(moved.write(tmp_path / "up.mid")).descriptors
    col = {name: k for k, name in enumerate(DESCRIPTOR_NAMES)}
    np.testing.assert_array_equal(song[:, col["bass_pitch"]], original[:, col["bass_pitch"]] + 2)
    present = original[:, col["melody_pitch"]] >= 0
    np.testing.assert_array_equal(song[present, col["melody_pitch"]], original[present, col["melody_pitch"]] + 2)
    for shape in ("melody_shape", "beat_shape", "bar_index", "beat_in_bar"):
        np.testing.assert_array_equal(song[:, col[shape]], original[:, col[shape]])
    rotated = ((original[:, col["pcset"]] << 2) | (original[:, col["pcset"]] >> 10)) & 0xFFF
    np.testing.assert_array_equal(song[:, col["pcset"]], rotated)
    # beats 0 and 2 both hold C2 + C4 as one whole-beat onset each: same shape; beat 1 (C2 + D4) differs
    assert original[0, col["beat_shape"]] == original[2, col["beat_shape"]] != original[1, col["beat_shape"]]
    assert original[0, col["melody_shape"]] == original[1, col["melody_shape"]]  # one note, on the beat
