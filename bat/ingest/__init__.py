"""Ingest: turn a MIDI file into a ``Song`` (all tracks packed into one note list, drums kept apart)."""

from bat.ingest.midi import load_midi
from bat.ingest.song import NoteArray, Song

__all__ = ["NoteArray", "Song", "load_midi"]
