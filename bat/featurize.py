"""One file in, its per-beat feature matrix out: parse -> beat grid -> notes per beat -> features.

This is the unit of work every runner (the CLI, the Prefect flow on Dask workers) calls per file. MIDI gets
its tempo-map grid when quantized and madmom-tracked beats when it is a performance (``bat.beats.select``);
audio (WAV, FLAC, MP3, Ogg) gets madmom's beats on the audio and notes from an offline transcriber
(``bat.ingest.audio``), and a folder of one song's stems the same, each stem transcribed alone
(``bat.ingest.stems``). Either way the rest is the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from bat.beats.grid import BeatGrid
from bat.beats.select import GridChoice, describe, select_grid, tracked_grid
from bat.errors import EmptyError, MeterError
from bat.features.context import BeatContext
from bat.features.descriptors import DESCRIPTOR_NAMES, compute_descriptors
from bat.features.registry import FEATURE_NAMES, compute_features
from bat.ingest.audio import AUDIO_MAX_BYTES, is_audio, load_audio, looks_like_audio
from bat.ingest.midi import DEFAULT_LIMITS, MidiLimits, load_midi, read_file
from bat.ingest.song import Song
from bat.ingest.stems import bundle_stems, is_stem_bundle, load_stems


@dataclass
class FeaturizedSong:
    """Everything the store keeps of one song."""

    source: str
    content_hash: str  # sha256 of the file's bytes: the song's identity in the store
    features: np.ndarray  # (n_beats, n_features) bool
    descriptors: np.ndarray  # (n_beats, n_descriptors) int64
    beat_times: np.ndarray  # (n_beats,) float64 seconds
    downbeats: np.ndarray  # (n_beats,) bool
    beat_source: str  # how the grid was found: "tempo_map", "madmom_midi" (a MIDI performance), "madmom_audio"
    meter: str  # predominant time signature, e.g. "4/4"
    meters: list[str]  # every time signature in force, in order of appearance
    n_notes: int
    duration: float  # seconds
    defaults: list[str] = field(default_factory=list)  # what the file lacked and bat assumed
    beat_confidence: float = 1.0  # 0..1: how sure the grid choice (and, if tracked, the tracking) is
    grid_evidence: str = ""  # why this grid: quantized/performance evidence, tracked tempo, meter...
    feature_names: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    descriptor_names: list[str] = field(default_factory=lambda: list(DESCRIPTOR_NAMES))

    @property
    def n_beats(self) -> int:
        return int(self.beat_times.shape[0])


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def featurize_path(
    path: str | os.PathLike, meter: str | None = None, limits: MidiLimits = DEFAULT_LIMITS
) -> FeaturizedSong:
    """Featurize one MIDI or audio file, or a folder of one song's stems; raises a ``bat.errors.BatError``
    subclass (with its category) on bad input.

    ``meter`` ("4/4", "3/4"...) keeps only songs whose every bar, a pickup aside, is in that meter.
    """
    source = str(path)
    return featurize_bytes(source, read_song(source, limits), meter=meter, limits=limits)


def read_song(source: str, limits: MidiLimits = DEFAULT_LIMITS) -> bytes:
    """The bytes that are a song's identity: a file's own, or a stem folder's bundle (``bundle_stems``)."""
    if os.path.isdir(source):
        return bundle_stems(source)
    return read_file(source, file_limits(source, limits))


def file_limits(source: str, limits: MidiLimits = DEFAULT_LIMITS) -> MidiLimits:
    """Audio files are far larger than MIDI: they get ``AUDIO_MAX_BYTES`` instead of the MIDI byte limit."""
    if is_audio(source) and limits.max_bytes < AUDIO_MAX_BYTES:
        return dataclasses.replace(limits, max_bytes=AUDIO_MAX_BYTES)
    return limits


def featurize_bytes(
    source: str, data: bytes, meter: str | None = None, limits: MidiLimits = DEFAULT_LIMITS
) -> FeaturizedSong:
    """``featurize_path`` for bytes already read (from an archive, or hashed first to skip known songs)."""
    song, choice = _song_and_grid(source, data, limits)
    grid = choice.grid
    if len(grid) == 0:
        raise EmptyError(source, "the song has no beats (its notes end at time 0)")
    meters = _meters(grid)
    if meter is not None and any(m != meter for m in meters):
        raise MeterError(source, f"meter {', '.join(meters)} does not match the filter {meter}")
    ctx = BeatContext(song=song, grid=grid)
    return FeaturizedSong(
        source=source,
        content_hash=content_hash(data),
        features=compute_features(ctx),
        descriptors=compute_descriptors(ctx),
        beat_times=grid.times,
        downbeats=grid.downbeats,
        beat_source=grid.source,
        meter=_predominant_meter(grid),
        meters=meters,
        n_notes=song.n_notes,
        duration=float(song.end_time),
        defaults=list(song.defaults),
        beat_confidence=float(choice.confidence),
        grid_evidence=choice.evidence,
    )


def _song_and_grid(source: str, data: bytes, limits: MidiLimits) -> tuple[Song, GridChoice]:
    if is_stem_bundle(data):
        song, samples, rate = load_stems(source, data)
        heard = f"stems: {len(song.notes)} notes and {len(song.drums)} drum hits transcribed; "
    elif is_audio(source) or looks_like_audio(data):
        song, samples, rate = load_audio(source, data)
        heard = f"audio: {len(song.notes)} notes transcribed; "
    else:
        song = load_midi(source, data=data, limits=limits)
        return song, select_grid(song)
    from bat.beats.tracking import track_audio

    tracked = track_audio(samples, rate, song)
    if len(tracked.times) < 2:
        raise EmptyError(source, "madmom found no beats in the audio")
    return song, GridChoice(tracked_grid(tracked, song.end_time), tracked.confidence, heard + describe(tracked))


def _meters(grid: BeatGrid) -> list[str]:
    """Distinct meters of the song's bars in order of appearance, a pickup bar left out.

    A pickup is a first bar shorter than the second bar's meter, whatever signature it was written with
    (converted scores write a pickup as a short bar of its own, e.g. 1/4 before 4/4).
    """
    bar_starts = np.flatnonzero(grid.downbeats)
    labels = [f"{grid.numerator[i]}/{grid.denominator[i]}" for i in bar_starts]
    if len(bar_starts) > 1 and grid.beats_in_bar[bar_starts[0]] < _nominal(grid, bar_starts[1]):
        labels = labels[1:]
    return list(dict.fromkeys(labels))


def _nominal(grid: BeatGrid, beat: int) -> int:
    numerator = int(grid.numerator[beat])
    return numerator // 3 if numerator % 3 == 0 and numerator != 3 else numerator


def _predominant_meter(grid: BeatGrid) -> str:
    codes = grid.numerator.astype(np.int64) * 1000 + grid.denominator.astype(np.int64)
    values, counts = np.unique(codes, return_counts=True)
    code = int(values[np.argmax(counts)])
    return f"{code // 1000}/{code % 1000}"
