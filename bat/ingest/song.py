"""The song as the rest of bat sees it: notes in seconds, drums apart, and the tempo and meter maps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class NoteArray:
    """Notes as parallel arrays (one entry per note), sorted by onset then pitch.

    Arrays rather than note objects: a Lakh pop file has ~10k notes and every feature is a vectorized
    reduction over them.
    """

    start: np.ndarray  # float64 seconds
    end: np.ndarray  # float64 seconds, > start
    pitch: np.ndarray  # int16 MIDI pitch (for drums: the GM drum key)
    velocity: np.ndarray  # int16
    program: np.ndarray  # int16 GM program 0..127 (0 for drums), or UNKNOWN_PROGRAM
    track: np.ndarray  # int16 index of the source track

    @classmethod
    def empty(cls) -> NoteArray:
        f, i = np.zeros(0, np.float64), np.zeros(0, np.int16)
        return cls(f, f.copy(), i, i.copy(), i.copy(), i.copy())

    @classmethod
    def concat(cls, parts: list[NoteArray]) -> NoteArray:
        if not parts:
            return cls.empty()
        merged = cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))
        return merged.sorted()

    def select(self, mask: np.ndarray) -> NoteArray:
        return NoteArray(*(getattr(self, name)[mask] for name in _FIELDS))

    def sorted(self) -> NoteArray:
        order = np.lexsort((self.pitch, self.start))
        return NoteArray(*(getattr(self, name)[order] for name in _FIELDS))

    def __len__(self) -> int:
        return int(self.start.shape[0])


_FIELDS = ("start", "end", "pitch", "velocity", "program", "track")
UNKNOWN_PROGRAM = -1  # a transcribed note whose instrument nothing names (audio, a separator's "other" stem)


@dataclass(frozen=True)
class TimeSignature:
    time: float  # seconds
    numerator: int
    denominator: int


@dataclass
class Song:
    """One piece: pitched notes packed from all tracks, drum hits apart, and its tempo and meter maps.

    ``tempo_times``/``tempi`` and ``time_signatures`` follow pretty_midi's reading of the file (track 0 only),
    because pretty_midi's beat grid is the reference bat's grid must reproduce.
    """

    source: str
    notes: NoteArray
    drums: NoteArray
    tempo_times: np.ndarray  # float64 seconds of each tempo change, first is 0.0
    tempi: np.ndarray  # float64 quarter notes per minute
    time_signatures: list[TimeSignature]
    end_time: float  # seconds of the last event, as pretty_midi.get_end_time() counts it
    resolution: int  # ticks per quarter note
    defaults: list[str] = field(default_factory=list)  # e.g. ["time_signature=4/4", "tempo=120"]

    @property
    def n_notes(self) -> int:
        return len(self.notes) + len(self.drums)
