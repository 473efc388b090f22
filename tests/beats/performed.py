"""Turn a quantized MIDI file into a "performance" whose true beats we know.

A human player drifts in tempo, places onsets a little early or late and varies loudness; a file recorded
that way keeps none of the score's tempo map. ``humanize`` does the same to a quantized file: a smooth
tempo curve (a global tempo factor times up to ±15% drift), uniform onset jitter (±25 ms) and velocity
noise, written at a constant 120 qpm with no time signature, as a recording sequencer leaves it. The
warped score beats are the ground truth the trackers are scored against (tests and bench/beats.py): by
default the musical grid of ``truth.score_grid`` (partial bars carry on the beat around them), or with
``truth="tempo_map"`` pretty_midi's grid as it is (which beats a jig's 5/8 repeat-cut bar in eighths).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

from bat.beats.grid import beat_grid
from bat.ingest.midi import load_midi
from tests.beats.truth import score_grid


@dataclass(frozen=True)
class HumanizeConfig:
    drift: float = 0.15  # peak relative tempo deviation of the smooth drift
    tempo_range: tuple[float, float] = (0.8, 1.25)  # global tempo factor, so "120 qpm" is no free hint
    jitter: float = 0.025  # seconds, uniform onset jitter (each note on its own)
    velocity_noise: int = 12  # uniform ± velocity steps


@dataclass
class Performance:
    midi: pretty_midi.PrettyMIDI
    beats: np.ndarray  # true beat times, seconds
    downbeats: np.ndarray  # true downbeat times, seconds
    beats_per_bar: np.ndarray  # per true beat, the bar length in beats (written meter)


def tempo_curve(duration: float, rng: np.random.Generator, config: HumanizeConfig) -> tuple[np.ndarray, np.ndarray]:
    """(score time grid, performed time) pairs: performed = integral of 1/tempo factor, smooth drift."""
    grid = np.linspace(0.0, duration + 5.0, int((duration + 5.0) * 50) + 2)
    drift = np.zeros_like(grid)
    for _ in range(3):  # a few slow waves (periods 8-40 s): phrases speed up and relax
        period = rng.uniform(8.0, 40.0)
        drift += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * grid / period + rng.uniform(0, 2 * np.pi))
    drift = config.drift * drift / max(np.abs(drift).max(), 1e-9)
    factor = rng.uniform(*config.tempo_range) * (1.0 + drift)  # >1: faster than written
    step = np.diff(grid, prepend=0.0)
    performed = np.cumsum(step / factor)
    return grid, performed - performed[0]


def humanize(path, seed: int = 0, config: HumanizeConfig = HumanizeConfig(), truth: str = "score") -> Performance:
    """A performance of the quantized file at ``path``, with its true beat grid (``truth``: "score" or
    "tempo_map", see the module docstring)."""
    rng = np.random.default_rng(seed)
    song = load_midi(path)
    if truth == "score":
        times, downbeats, beats_in_bar = score_grid(song)
    elif truth == "tempo_map":
        grid = beat_grid(song)
        times, downbeats, beats_in_bar = grid.times, grid.downbeats, grid.beats_in_bar
    else:
        raise ValueError(f"unknown truth {truth!r}: 'score' or 'tempo_map'")
    score_time, performed = tempo_curve(song.end_time, rng, config)
    warp = lambda t: np.interp(t, score_time, performed)  # noqa: E731
    midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    for notes, is_drum in ((song.notes, False), (song.drums, True)):
        for program in np.unique(notes.program) if len(notes) else []:
            chosen = notes.select(notes.program == program)
            inst = pretty_midi.Instrument(int(program), is_drum=is_drum)
            start = warp(chosen.start) + rng.uniform(-config.jitter, config.jitter, len(chosen))
            end = np.maximum(warp(chosen.end), start + 0.03)
            start = np.maximum(start, 0.0)
            noise = rng.integers(-config.velocity_noise, config.velocity_noise + 1, len(chosen))
            velocity = np.clip(chosen.velocity + noise, 1, 127)
            for s, e, p, v in zip(start, end, chosen.pitch, velocity):
                inst.notes.append(pretty_midi.Note(int(v), int(p), float(s), float(e)))
            midi.instruments.append(inst)
    last_sound = max(song.notes.end.max() if len(song.notes) else 0.0, song.drums.end.max() if len(song.drums) else 0.0)
    keep = times < last_sound - 1e-6  # beats while the music sounds, held final notes included
    beats = warp(times[keep])
    return Performance(midi, beats, beats[downbeats[keep]], beats_in_bar[keep])
