"""MIDI file -> ``Song``, fast: symusic's C++ parser for the notes, a small scanner for the conductor track.

pretty_midi is bat's reference semantics but costs ~150 ms per pop file in pure Python; symusic parses the
same file in ~1 ms. The one place where they read a file differently is the tempo and meter maps: pretty_midi
takes tempo, time and key signatures from track 0 only, symusic merges all tracks. So track 0's meta events
are scanned here (the conductor track is small), and ticks are converted to seconds with pretty_midi's map.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from bat.errors import EmptyError, ParseError, ReadError, TooLargeError
from bat.ingest.song import NoteArray, Song, TimeSignature


@dataclass(frozen=True)
class MidiLimits:
    """Per-file limits that stop pathological files (huge tick counts, millions of events) early."""

    max_bytes: int = 32 * 1024 * 1024  # Lakh's largest real files are a few MB
    max_tick: int = 200_000_000  # music21 writes 10,080 ticks per quarter: ~20k quarters
    max_notes: int = 2_000_000


DEFAULT_LIMITS = MidiLimits()


@dataclass
class ConductorTrack:
    """What pretty_midi reads from track 0: tempo changes, time and key signatures, text events."""

    tempo_ticks: list[int]
    tempo_us_per_quarter: list[int]
    time_signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator)
    meta_ticks: list[int]  # key signatures and text events: they only extend the end time


def load_midi(path: str | os.PathLike, data: bytes | None = None, limits: MidiLimits = DEFAULT_LIMITS) -> Song:
    """Parse a MIDI file into a Song; raises a ``BatError`` subclass naming what is wrong with it."""
    source = str(path)
    if data is None:
        data = read_file(source, limits)
    if len(data) == 0:
        raise EmptyError(source, "the file is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise TooLargeError(source, f"file is {len(data)} bytes, over the {limits.max_bytes}-byte limit")
    resolution, conductor = scan_conductor_track(source, data)
    score = _parse_score(source, data)
    max_tick = int(score.end())
    if max_tick > limits.max_tick:
        raise TooLargeError(source, f"last event at tick {max_tick}, over the {limits.max_tick}-tick limit")
    if score.note_num() > limits.max_notes:
        raise TooLargeError(source, f"{score.note_num()} notes, over the {limits.max_notes}-note limit")

    tempo_map = TempoMap.from_conductor(conductor, resolution)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in ("time", "end", "pitch", "velocity", "program", "track", "drum")}
    event_ticks = [*conductor.meta_ticks, *conductor.tempo_ticks, *(tick for tick, _, _ in conductor.time_signatures)]
    for track_index, track in enumerate(score.tracks):
        notes = track.notes.numpy()
        count = notes["time"].size
        if count:
            start = notes["time"].astype(np.int64)
            columns["time"].append(start)
            columns["end"].append(start + notes["duration"].astype(np.int64))
            columns["pitch"].append(notes["pitch"])
            columns["velocity"].append(notes["velocity"])
            columns["program"].append(np.full(count, 0 if track.is_drum else int(track.program), np.int16))
            columns["track"].append(np.full(count, track_index, np.int16))
            columns["drum"].append(np.full(count, bool(track.is_drum)))
        for events in (track.controls, track.pitch_bends):
            if len(events):
                event_ticks.append(int(events.numpy()["time"].max()))
        if len(track.lyrics):
            event_ticks.append(max(int(lyric.time) for lyric in track.lyrics))
    if not columns["time"]:
        raise EmptyError(source, "the file has no notes")
    merged = {name: np.concatenate(parts) for name, parts in columns.items()}
    merged["end"] = _close_like_pretty_midi(merged["time"], merged["end"], merged["track"], merged["pitch"])
    seconds = tempo_map.seconds(np.concatenate([merged["time"], merged["end"]]))
    n_total = merged["time"].size
    all_notes = NoteArray(
        start=seconds[:n_total],
        end=seconds[n_total:],
        pitch=merged["pitch"].astype(np.int16),
        velocity=merged["velocity"].astype(np.int16),
        program=merged["program"],
        track=merged["track"],
    )
    drum = merged["drum"]
    notes, drum_notes = all_notes.select(~drum).sorted(), all_notes.select(drum).sorted()
    end_tick = max(event_ticks + [int(merged["end"].max())])
    defaults = []
    if not conductor.time_signatures:
        defaults.append("time_signature=4/4")
    if not conductor.tempo_ticks:
        defaults.append("tempo=120")
    return Song(
        source=source,
        notes=notes,
        drums=drum_notes,
        tempo_times=tempo_map.change_times,
        tempi=tempo_map.qpm,
        time_signatures=[
            TimeSignature(float(tempo_map.seconds(np.array([t]))[0]), n, d) for t, n, d in conductor.time_signatures
        ],
        end_time=float(tempo_map.seconds(np.array([end_tick]))[0]),
        resolution=resolution,
        defaults=defaults,
    )


def _close_like_pretty_midi(start: np.ndarray, end: np.ndarray, track: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """End overlapping notes of one pitch at the first note-off after their start, as pretty_midi does.

    symusic pairs note-ons and note-offs one to one; pretty_midi lets one note-off close every open note of
    that pitch. They differ only on overlapping same-pitch notes, but that moves a file's end time and hence
    its number of beats, so bat follows the reference.
    """
    key = (track.astype(np.int64) * 128 + pitch.astype(np.int64)) << 40
    offs = np.sort(key + end)
    at = np.searchsorted(offs, key + start, side="right")
    candidate = offs[np.minimum(at, offs.size - 1)] - key
    same_key = (at < offs.size) & (candidate >= 0) & (candidate < (1 << 40))
    return np.where(same_key & (candidate < end) & (end > start), candidate, end)


def read_file(source: str, limits: MidiLimits) -> bytes:
    try:
        size = os.path.getsize(source)
        if size > limits.max_bytes:
            raise TooLargeError(source, f"file is {size} bytes, over the {limits.max_bytes}-byte limit")
        with open(source, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ReadError(source, f"cannot read the file: {error.strerror or error}") from error


def _parse_score(source: str, data: bytes):
    import symusic

    try:
        return symusic.Score.from_midi(data)
    except Exception as error:  # symusic raises plain RuntimeError/ValueError on malformed bytes
        raise ParseError(source, f"not a valid MIDI file: {error}") from error


class TempoMap:
    """pretty_midi's tick -> seconds map: piecewise linear, tempo changes from track 0 only."""

    def __init__(self, ticks: np.ndarray, seconds_per_tick: np.ndarray, resolution: int):
        self.ticks = ticks
        self.scale = seconds_per_tick
        starts = np.zeros(len(ticks))
        for k in range(1, len(ticks)):
            starts[k] = starts[k - 1] + (ticks[k] - ticks[k - 1]) * seconds_per_tick[k - 1]
        self.start_seconds = starts
        self.resolution = resolution

    @classmethod
    def from_conductor(cls, conductor: ConductorTrack, resolution: int) -> TempoMap:
        # pretty_midi._load_tempo_changes: 120 qpm at tick 0, replaced by tempo events at tick 0; later
        # events are appended unless they repeat the previous tempo.
        ticks, scales = [0], [60.0 / (120.0 * resolution)]
        for tick, tempo in zip(conductor.tempo_ticks, conductor.tempo_us_per_quarter):
            scale = 60.0 / ((6e7 / tempo) * resolution)
            if tick == 0:
                ticks, scales = [0], [scale]
            elif scale != scales[-1]:
                ticks.append(tick)
                scales.append(scale)
        return cls(np.array(ticks, np.int64), np.array(scales, np.float64), resolution)

    def seconds(self, ticks: np.ndarray) -> np.ndarray:
        segment = np.searchsorted(self.ticks, ticks, side="right") - 1
        return self.start_seconds[segment] + (ticks - self.ticks[segment]) * self.scale[segment]

    @property
    def change_times(self) -> np.ndarray:
        return self.start_seconds.copy()

    @property
    def qpm(self) -> np.ndarray:
        return 60.0 / (self.scale * self.resolution)


def scan_conductor_track(source: str, data: bytes) -> tuple[int, ConductorTrack]:
    """Read the header and track 0's meta events; returns (ticks per quarter, conductor track)."""
    if len(data) < 14 or data[:4] != b"MThd":
        raise ParseError(source, "no MIDI header (the file does not start with MThd)")
    header_length = int.from_bytes(data[4:8], "big")
    division = int.from_bytes(data[12:14], "big")
    if division & 0x8000:
        raise ParseError(source, "SMPTE time division is not supported (only ticks per quarter note)")
    if division == 0:
        raise ParseError(source, "the header gives 0 ticks per quarter note")
    pos = 8 + header_length
    while pos + 8 <= len(data):
        name, length = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "big")
        if name == b"MTrk":
            return division, _scan_track(source, data, pos + 8, min(pos + 8 + length, len(data)))
        pos += 8 + length
    raise ParseError(source, "the file has no track chunk (MTrk)")


def _scan_track(source: str, data: bytes, pos: int, end: int) -> ConductorTrack:
    conductor = ConductorTrack([], [], [], [])
    tick, status = 0, 0
    try:
        while pos < end:
            delta, pos = _varlen(data, pos)
            tick += delta
            byte = data[pos]
            if byte == 0xFF:
                kind = data[pos + 1]
                length, pos = _varlen(data, pos + 2)
                payload = data[pos : pos + length]
                pos += length
                if kind == 0x2F:
                    break
                if kind == 0x51 and length == 3:
                    conductor.tempo_ticks.append(tick)
                    conductor.tempo_us_per_quarter.append(max(1, int.from_bytes(payload, "big")))
                elif kind == 0x58 and length >= 2:
                    numerator, denominator = payload[0], 2 ** payload[1]
                    if numerator == 0:
                        raise ParseError(source, f"time signature {numerator}/{denominator} at tick {tick}")
                    conductor.time_signatures.append((tick, numerator, denominator))
                elif kind in (0x01, 0x59):
                    conductor.meta_ticks.append(tick)
            elif byte in (0xF0, 0xF7):
                length, pos = _varlen(data, pos + 1)
                pos += length
            else:
                if byte & 0x80:
                    status = byte
                    pos += 1
                elif not status:
                    raise ParseError(source, f"data byte without a status at tick {tick} in track 0")
                pos += 1 if (status & 0xF0) in (0xC0, 0xD0) else 2
    except IndexError as error:
        raise ParseError(source, "track 0 is truncated") from error
    return conductor


def _varlen(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos
    raise IndexError("variable-length quantity longer than 4 bytes")
