"""Beats: the beat/downbeat grid of a song and the notes that take part in each beat."""

from bat.beats.grid import BeatGrid, beat_grid
from bat.beats.membership import BeatNotes, notes_in_beats

__all__ = ["BeatGrid", "BeatNotes", "beat_grid", "notes_in_beats"]
