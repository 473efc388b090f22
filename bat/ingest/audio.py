"""Audio file -> ``Song``: decode, then transcribe the notes offline with basic-pitch's bundled ONNX model.

bat's features are about notes, so audio is turned into notes first; its beats come from madmom on the
audio itself (``bat.beats.tracking.track_audio``), joined by the transcription where it is a single melody
line, whose notes carry the melody's accent (``bat.beats.tracking.audio_beat_activation``).
basic-pitch (Spotify, ICASSP 2022) is small, polyphonic and instrument-agnostic; its ONNX model ships inside
the package and runs on onnxruntime, so nothing is downloaded and TensorFlow is not needed (basic-pitch is
installed with ``--no-deps``: see the Makefile). The Song's tempo map is empty (120 qpm, no meter): a
transcription has none, and ``defaults`` says so.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from bat.errors import EmptyError, ParseError
from bat.ingest.song import UNKNOWN_PROGRAM, NoteArray, Song

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
AUDIO_MAX_BYTES = 256 * 1024 * 1024  # a 20-minute 44.1 kHz stereo WAV; MIDI's 32 MB limit is far too small


@dataclass(frozen=True)
class TranscriptionConfig:
    """basic-pitch's own defaults (its CLI's), kept here so a change is visible in one place."""

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    minimum_note_ms: float = 127.7
    max_seconds: float = 1200.0  # longer audio is cut: 20 minutes is a concert, not a song


DEFAULT_TRANSCRIPTION = TranscriptionConfig()


def is_audio(path: str) -> bool:
    return str(path).lower().endswith(AUDIO_SUFFIXES)


def looks_like_audio(data: bytes) -> bool:
    """Magic bytes of WAV, FLAC, Ogg and MP3 (ID3 tag or a frame sync)."""
    head = data[:12]
    return (
        (head[:4] == b"RIFF" and head[8:12] == b"WAVE")
        or head[:4] in (b"fLaC", b"OggS")
        or head[:3] == b"ID3"
        or (len(head) > 1 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0)
    )


def decode_audio(source: str, data: bytes) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of WAV/FLAC/Ogg/MP3 bytes, via libsndfile (soundfile)."""
    import soundfile

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError/RuntimeError on bytes it cannot decode
        raise ParseError(source, f"cannot decode the audio ({error}); bat reads WAV, FLAC, Ogg and MP3") from error
    if samples.shape[0] == 0:
        raise EmptyError(source, "the audio has no samples")
    return samples.mean(axis=1), int(rate)


_MODEL = None


def _quiet_import_basic_pitch():
    """Import basic-pitch without its import-time notices about the TensorFlow/CoreML/TFLite it lacks."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        import basic_pitch.inference  # noqa: F401
        import basic_pitch.note_creation  # noqa: F401
    finally:
        root.setLevel(level)


def _model():
    """basic-pitch's ONNX model from the installed package (loaded once per process)."""
    global _MODEL
    if _MODEL is None:
        _quiet_import_basic_pitch()
        from basic_pitch import ICASSP_2022_MODEL_PATH
        from basic_pitch.inference import Model

        path = ICASSP_2022_MODEL_PATH
        if not str(path).endswith(".onnx"):  # with TensorFlow installed it points at the SavedModel
            path = path.parent / "nmp.onnx"
        _MODEL = Model(path)
    return _MODEL


def transcribe(samples: np.ndarray, sample_rate: int, config: TranscriptionConfig = DEFAULT_TRANSCRIPTION) -> NoteArray:
    """Notes of mono audio: basic-pitch's inference (run_inference) on an in-memory signal."""
    import librosa

    _quiet_import_basic_pitch()
    from basic_pitch import note_creation
    from basic_pitch.constants import AUDIO_N_SAMPLES, AUDIO_SAMPLE_RATE, FFT_HOP
    from basic_pitch.inference import unwrap_output, window_audio_file

    audio = samples[: int(config.max_seconds * sample_rate)]
    if sample_rate != AUDIO_SAMPLE_RATE:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=AUDIO_SAMPLE_RATE, res_type="soxr_hq")
    audio = audio.astype(np.float32)
    n_overlap = 30  # frames, as basic-pitch's run_inference
    overlap = n_overlap * FFT_HOP
    padded = np.concatenate([np.zeros(overlap // 2, np.float32), audio])
    windows = np.stack([w for w, _ in window_audio_file(padded, AUDIO_N_SAMPLES - overlap)])  # (W, N, 1)
    model = _model()
    outputs: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
    for batch in range(0, len(windows), 8):
        for key, value in model.predict(windows[batch : batch + 8]).items():
            outputs[key].append(value)
    model_output = {key: unwrap_output(np.concatenate(value), audio.size, n_overlap) for key, value in outputs.items()}
    _, events = note_creation.model_output_to_notes(
        model_output,
        onset_thresh=config.onset_threshold,
        frame_thresh=config.frame_threshold,
        min_note_len=int(np.round(config.minimum_note_ms / 1000 * (AUDIO_SAMPLE_RATE / FFT_HOP))),
        melodia_trick=True,
        multiple_pitch_bends=False,
    )
    if not events:
        return NoteArray.empty()
    start, end, pitch, amplitude = (np.array([e[k] for e in events]) for k in range(4))
    count = len(events)
    return NoteArray(
        start=start.astype(np.float64),
        end=np.maximum(end, start + 0.01).astype(np.float64),
        pitch=pitch.astype(np.int16),
        velocity=np.clip(np.round(amplitude * 127), 1, 127).astype(np.int16),
        program=np.full(count, UNKNOWN_PROGRAM, np.int16),  # basic-pitch hears pitches, not instruments
        track=np.zeros(count, np.int16),
    ).sorted()


def load_audio(
    source: str, data: bytes, config: TranscriptionConfig = DEFAULT_TRANSCRIPTION
) -> tuple[Song, np.ndarray, int]:
    """(Song of the transcribed notes, mono samples, sample rate); raises a BatError on bad or silent audio."""
    samples, rate = decode_audio(source, data)
    notes = transcribe(samples, rate, config)
    if len(notes) == 0:
        raise EmptyError(source, "no notes were transcribed from the audio (silence, or no pitched sound)")
    samples = samples[: int(config.max_seconds * rate)]
    song = transcribed_song(source, notes, NoteArray.empty(), samples.size / rate, ["notes=basic-pitch transcription"])
    return song, samples, rate


def transcribed_song(source: str, notes: NoteArray, drums: NoteArray, duration: float, defaults: list[str]) -> Song:
    """A Song of transcribed notes: no tempo map or meter (120 qpm, as ``defaults`` then says), and as long as the
    audio or its last note."""
    ends = [part.end.max() for part in (notes, drums) if len(part)]
    return Song(
        source=source, notes=notes, drums=drums, tempo_times=np.zeros(1), tempi=np.full(1, 120.0), time_signatures=[],
        end_time=float(max(duration, *ends)), resolution=480, defaults=[*defaults, "tempo_map=none (audio)"],
    )
