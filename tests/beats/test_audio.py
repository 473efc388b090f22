"""Audio end to end: a FluidSynth render of a known piece through ``featurize_path``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bat.featurize import featurize_path
from tests.beats.performed import humanize
from tests.beats.pieces import f_measure, groove, write

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")


def render(midi: Path, wav: Path) -> Path:
    """FluidSynth offline render, under a timeout: FluidSynth 2.3.1 can hang on some files."""
    fluidsynth = shutil.which("fluidsynth")
    soundfont = next((sf for sf in SOUNDFONTS if Path(sf).exists()), None)
    if fluidsynth is None or soundfont is None:
        pytest.skip("fluidsynth or a GM soundfont is not installed (apt-get install fluidsynth fluid-soundfont-gm)")
    command = [fluidsynth, "-ni", "-q", "-g", "0.6", "-r", "22050", "-F", str(wav), soundfont, str(midi)]
    subprocess.run(command, check=True, timeout=60, capture_output=True)
    return wav


def test_rendered_performance_featurizes_with_audio_beats(tmp_path):
    performance = humanize(write(groove(bars=12), tmp_path, "groove.mid"), seed=2)
    played = tmp_path / "played.mid"
    performance.midi.write(str(played))
    wav = render(played, tmp_path / "played.wav")
    song = featurize_path(wav)
    assert song.beat_source == "madmom_audio"
    assert song.grid_evidence.startswith("audio:") and "madmom_audio meter=" in song.grid_evidence
    assert "notes=basic-pitch transcription" in song.defaults
    assert song.n_notes > 100 and song.features.shape[0] == song.n_beats
    assert f_measure(performance.beats, song.beat_times) >= 0.9
    assert f_measure(performance.downbeats, song.beat_times[song.downbeats]) >= 0.8
    assert song.meter == "4/4" and 0.0 < song.beat_confidence <= 1.0
    assert np.all(np.diff(song.beat_times) > 0)
    families = [k for k, name in enumerate(song.feature_names) if name.startswith("family_")]
    assert not song.features[:, families].any()  # a transcription knows pitches, not instruments: none is claimed


def test_undecodable_audio_is_a_parse_failure(tmp_path):
    from bat.errors import ParseError

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with pytest.raises(ParseError, match="cannot decode the audio"):
        featurize_path(bad)


@pytest.mark.parametrize("fmt,suffix", [("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3"), ("WAV", ".wav")])
def test_audio_formats_are_recognised_and_decoded(tmp_path, fmt, suffix):
    import io

    import soundfile

    from bat.ingest.audio import decode_audio, looks_like_audio
    from bat.ingest.sources import expand_inputs

    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([tone, tone], axis=1), 22050, format=fmt)
    data = buffer.getvalue()
    assert looks_like_audio(data)
    samples, rate = decode_audio(f"tone{suffix}", data)
    assert rate == 22050 and samples.ndim == 1 and abs(samples.size - 22050) < 2000
    (tmp_path / f"tone{suffix}").write_bytes(data)
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / f"tone{suffix}")]


def test_madmom_downbeats_are_weighed_in_and_recorded_on_a_rendered_piece(tmp_path):
    """A short 3/4 hymn excerpt: madmom's downbeat RNN hears its bars in the audio, and the grid evidence
    says which evidence placed them."""
    from bat.beats.audio_bars import downbeat_activation, downbeat_probability
    from bat.beats.tracking import audio_activation, track_activation
    from bat.ingest.audio import load_audio
    from tests.beats.pieces import hymn

    performance = humanize(write(hymn(bars=10), tmp_path, "hymn.mid"), seed=1)
    played = tmp_path / "played.mid"
    performance.midi.write(str(played))
    wav = render(played, tmp_path / "played.wav")
    song, samples, rate = load_audio(str(wav), wav.read_bytes())
    beats, downbeats = performance.beats, performance.downbeats

    heard = downbeat_activation(samples, rate)
    probability = downbeat_probability(heard, beats, 100)
    on_downbeats = np.isin(beats, downbeats)
    assert probability[on_downbeats].mean() > probability[~on_downbeats].mean() + 0.2

    activation = audio_activation(samples, rate)
    tracked = track_activation(activation, song, "madmom_audio", trust_madmom=True, audio_downbeats=heard)
    assert tracked.downbeats_by in ("notes", "audio", "notes+audio")
    assert {"notes_bar_share", "audio_bar_share"} <= set(tracked.evidence)
    assert tracked.beats_per_bar == 3
    assert f_measure(downbeats, tracked.times[tracked.beat_in_bar == 0]) >= 0.8
    notes_only = track_activation(activation, song, "madmom_audio", trust_madmom=True)
    assert notes_only.downbeats_by == "notes" and "audio_bar_share" not in notes_only.evidence

    featurized = featurize_path(wav)
    assert f"downbeats={tracked.downbeats_by}" in featurized.grid_evidence and "audio_bar_share=" in featurized.grid_evidence


def test_a_rendered_single_line_is_tracked_on_its_audio_and_its_transcribed_notes(tmp_path):
    """The transcription of a one-line tune is a melody (its notes ring into the next onset and still count as
    one line), so its beats come from the audio and its notes with the melody's accent together, its level
    chosen as a melody's."""
    from bat.beats.bars import is_melody
    from bat.beats.tracking import audio_activation, audio_beat_activation, note_activation, track_audio
    from bat.ingest.audio import load_audio
    from tests.beats.pieces import march

    performance = humanize(write(march(bars=12), tmp_path, "march.mid"), seed=1)
    played = tmp_path / "played.mid"
    performance.midi.write(str(played))
    wav = render(played, tmp_path / "played.wav")
    song, samples, rate = load_audio(str(wav), wav.read_bytes())
    assert is_melody(song)
    activation, trust_madmom = audio_beat_activation(samples, rate, song)
    assert not trust_madmom
    notes, heard = note_activation(song), audio_activation(samples, rate)
    both = np.zeros(max(len(notes), len(heard)))
    both[: len(notes)] += notes
    both[: len(heard)] += heard
    np.testing.assert_allclose(activation, both / 2)
    tracked = track_audio(samples, rate, song)
    assert tracked.beats_per_bar == 2  # measured: beat F 0.91, downbeat F 0.89
    assert f_measure(performance.beats, tracked.times) >= 0.85
    assert f_measure(performance.downbeats, tracked.times[tracked.beat_in_bar == 0]) >= 0.8
