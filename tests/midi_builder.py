"""Hand-built MIDI files whose features we know: notes placed in beats at a fixed tempo."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pretty_midi


@dataclass
class N:
    """A note placed in beats: pitch, onset beat, length in beats (at the song's quarter-note tempo)."""

    pitch: int
    beat: float
    length: float = 1.0
    program: int = 0
    velocity: int = 80


@dataclass
class Piece:
    notes: list[N] = field(default_factory=list)
    drums: list[tuple[int, float]] = field(default_factory=list)  # (GM key, beat)
    time_signatures: list[tuple[int, int, float]] = field(default_factory=lambda: [(4, 4, 0.0)])  # (num, den, beat)
    qpm: float = 120.0
    seconds_per_beat: float | None = None  # default: one quarter note

    def write(self, path: Path) -> Path:
        spb = self.seconds_per_beat or 60.0 / self.qpm
        midi = pretty_midi.PrettyMIDI(initial_tempo=self.qpm)
        for num, den, beat in self.time_signatures:
            midi.time_signature_changes.append(pretty_midi.TimeSignature(num, den, beat * spb))
        by_program: dict[int, pretty_midi.Instrument] = {}
        for note in self.notes:
            inst = by_program.setdefault(note.program, pretty_midi.Instrument(program=note.program))
            inst.notes.append(pretty_midi.Note(note.velocity, note.pitch, note.beat * spb, (note.beat + note.length) * spb))
        midi.instruments.extend(by_program.values())
        if self.drums:
            kit = pretty_midi.Instrument(program=0, is_drum=True)
            for key, beat in self.drums:
                kit.notes.append(pretty_midi.Note(100, key, beat * spb, beat * spb + 0.05))
            midi.instruments.append(kit)
        midi.write(str(path))
        return path
