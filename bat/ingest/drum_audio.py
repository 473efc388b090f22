"""Drum hits of a drum stem: kick, snare and closed hi-hat onsets, as General MIDI drum notes.

basic-pitch transcribes pitched notes and hears a drum kit as noise, so a stem that is only drums gets its own
transcriber: the classic semi-adaptive NMF of drum transcription (Dittmar and Gärtner, DAFx 2014). A mel
spectrogram is factored into three spectral templates, started as a kick (energy around 70 Hz), a snare (a
body near 200 Hz under broadband noise) and a hi-hat (around 9 kHz), which then adapt to the recording's own
kit; each template's activation rises where its drum is struck. Kick and snare leak into each other's
activation (the kick's beater click, the snare's body), so only the peaks within reach of the strongest are
hits, and where the other drum is struck, only the peaks well within reach. The hi-hat comes from the high
band's spectral flux instead: hats are many and soft, and a crash dwarfs them in any activation. Toms, cymbals
and percussion are not told apart, and a ghost note far softer than the backbeat is lost. bench/stems.py
measures it on FluidSynth renders of humanized pop songs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bat.ingest.song import NoteArray

KICK, SNARE, CLOSED_HAT = 36, 38, 42  # GM drum keys, as bat.features.drums reads them


@dataclass(frozen=True)
class DrumTranscriptionConfig:
    fps: int = 100
    n_mels: int = 64
    iterations: int = 60  # NMF updates; the templates adapt after the first 10
    delta: float = 0.05  # peak picking: how far a peak must rise over its local mean (activation scaled to 0..1)
    reach: float = 0.45  # a kick or snare hit peaks at least this share of its loud hits (their 90th percentile)
    leak_reach: float = 0.7  # ... and this share where the other drum is struck within 30 ms (it leaks into both)
    hat_band: tuple[float, float] = (6000.0, 14000.0)  # Hz
    hat_delta: float = 0.1


DEFAULT_DRUMS = DrumTranscriptionConfig()


def transcribe_drums(samples: np.ndarray, sample_rate: int, config: DrumTranscriptionConfig = DEFAULT_DRUMS) -> NoteArray:
    """Drum notes (GM keys 36, 38, 42; 50 ms long, velocity from the onset's strength) of mono audio."""
    import librosa

    rate = 44100
    audio = samples.astype(np.float32)
    if sample_rate != rate:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=rate, res_type="soxr_hq")
    mel = librosa.feature.melspectrogram(
        y=audio, sr=rate, n_fft=2048, hop_length=rate // config.fps, n_mels=config.n_mels, fmin=20, fmax=16000, power=1.0
    )
    freqs = librosa.mel_frequencies(config.n_mels, fmin=20, fmax=16000)
    activations = _semi_adaptive_nmf(mel, _initial_templates(freqs), config.iterations)
    kick, snare = (_strong_peaks(_rise(activation), config) for activation in activations[:2])
    hits = [_unleaked(kick, snare, config), _unleaked(snare, kick, config)]
    band = (freqs >= config.hat_band[0]) & (freqs < config.hat_band[1])
    log_band = np.log1p(100.0 * mel[band])
    hat_flux = np.maximum(0.0, np.diff(log_band, axis=1, prepend=log_band[:, :1])).sum(axis=0)
    hits.append(_peaks(hat_flux / (np.percentile(hat_flux, 99) + 1e-9), config.hat_delta))
    parts = [_drum_notes(frames, strength, key, config.fps) for (frames, strength), key in zip(hits, (KICK, SNARE, CLOSED_HAT))]
    return NoteArray.concat(parts)


def _initial_templates(freqs: np.ndarray) -> np.ndarray:
    """(n_mels, 3) kick, snare and hi-hat spectra as log-frequency bumps, each summing to 1."""
    octave = np.log2(np.maximum(freqs, 20.0))
    bump = lambda hz, width: np.exp(-0.5 * ((octave - np.log2(hz)) / width) ** 2)  # noqa: E731
    templates = np.stack([bump(70, 0.7), bump(1500, 1.6) + 0.5 * bump(200, 0.4), bump(9000, 0.6)], axis=1) + 1e-3
    return templates / templates.sum(axis=0)


def _semi_adaptive_nmf(spectrogram: np.ndarray, templates: np.ndarray, iterations: int) -> np.ndarray:
    """(3, T) activations by KL-divergence multiplicative updates; templates held for 10 updates, then adapted."""
    eps = 1e-9
    templates = templates.copy()
    activations = np.full((templates.shape[1], spectrogram.shape[1]), spectrogram.mean() + eps)
    for step in range(iterations):
        activations *= (templates.T @ (spectrogram / (templates @ activations + eps))) / (templates.sum(axis=0)[:, None] + eps)
        if step >= 10:
            ratio = spectrogram / (templates @ activations + eps)
            templates *= (ratio @ activations.T) / (activations.sum(axis=1)[None, :] + eps)
            templates /= templates.sum(axis=0) + eps
    return activations


def _rise(activation: np.ndarray) -> np.ndarray:
    """Half-wave rectified first difference of the log-compressed ``activation``, scaled to a maximum of 1."""
    signal = np.log1p(10.0 * activation / (np.percentile(activation, 99) + 1e-9))
    rise = np.maximum(0.0, np.diff(signal, prepend=signal[:1]))
    return rise / (rise.max() + 1e-9)


def _peaks(strength: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    frames = librosa.util.peak_pick(strength, pre_max=3, post_max=3, pre_avg=10, post_avg=10, delta=delta, wait=5)
    return frames, strength[frames]


def _strong_peaks(strength: np.ndarray, config: DrumTranscriptionConfig) -> tuple[np.ndarray, np.ndarray]:
    frames, heights = _peaks(strength, config.delta)
    if frames.size == 0:
        return frames, heights
    keep = heights >= config.reach * np.percentile(heights, 90)
    return frames[keep], heights[keep]


def _unleaked(own: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray], config: DrumTranscriptionConfig):
    """``own`` hits less those at the other drum's hits that peak below ``leak_reach``: the other drum's leakage."""
    frames, heights = own
    if frames.size == 0 or other[0].size == 0:
        return own
    near = np.abs(frames[:, None] - other[0][None, :]).min(axis=1) <= 3
    keep = ~near | (heights >= config.leak_reach * np.percentile(heights, 90))
    return frames[keep], heights[keep]


def _drum_notes(frames: np.ndarray, strength: np.ndarray, key: int, fps: int) -> NoteArray:
    count = frames.size
    start = frames.astype(np.float64) / fps
    velocity = np.clip(np.round(40 + 87 * strength / max(float(strength.max(initial=0.0)), 1e-9)), 1, 127)
    return NoteArray(
        start=start,
        end=start + 0.05,
        pitch=np.full(count, key, np.int16),
        velocity=velocity.astype(np.int16),
        program=np.zeros(count, np.int16),
        track=np.zeros(count, np.int16),
    )
