"""A song as audio stems: found in the common layouts, each part transcribed alone (drums as drum hits), and
featurized as one song, alone or by ``bat featurize`` beside MIDI and audio files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from bat.errors import ParseError
from bat.featurize import featurize_path, read_song
from bat.ingest.sources import expand_inputs
from bat.ingest.song import UNKNOWN_PROGRAM
from bat.ingest.stems import DRUM_PROGRAM, bundle_stems, is_stem_bundle, is_stem_folder
from tests.beats.performed import humanize
from tests.beats.pieces import f_measure, groove, write
from tests.beats.test_audio import render

PARTS = {"drums": None, "bass": 33, "piano": 0, "other": 73}  # Demucs-like names -> the groove's instruments


def render_stems(performance, folder: Path) -> Path:
    """One WAV per part of a performed groove, named as a source separator names them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, program in PARTS.items():
        midi = copy.deepcopy(performance.midi)
        midi.instruments = [
            i for i in midi.instruments if (i.is_drum if program is None else not i.is_drum and i.program == program)
        ]
        assert midi.instruments, name
        midi.write(str(folder / f"{name}.mid"))
        render(folder / f"{name}.mid", folder / f"{name}.wav")
        (folder / f"{name}.mid").unlink()
    return folder


@pytest.fixture(scope="module")
def performed_stems(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stems")
    performance = humanize(write(groove(bars=16), folder, "groove.mid"), seed=3)
    return performance, render_stems(performance, folder / "groove")


def test_a_folder_of_stems_is_one_song_with_a_track_per_part(performed_stems):
    performance, folder = performed_stems
    song = featurize_path(folder)
    assert song.beat_source == "madmom_audio" and song.grid_evidence.startswith("stems:")
    assert "notes=basic-pitch transcription of 3 stems" in song.defaults
    assert "drums=NMF drum transcription of 1 stems" in song.defaults
    assert f_measure(performance.beats, song.beat_times) >= 0.9
    assert f_measure(performance.downbeats, song.beat_times[song.downbeats]) >= 0.8
    assert song.meter == "4/4" and 0.0 < song.beat_confidence <= 1.0
    names = song.feature_names
    kick, snare = song.features[:, names.index("kick")], song.features[:, names.index("snare")]
    # the groove: kick on beats 1 and 3, snare on 2 and 4; the tracked bars put them there
    position = np.full(song.n_beats, -1)
    for k in np.flatnonzero(song.downbeats):
        position[k : k + 4] = np.arange(min(4, song.n_beats - k))
    played = position >= 0
    assert kick[played & (position % 2 == 0)].mean() > 0.9 and kick[played & (position % 2 == 1)].mean() < 0.1
    assert snare[played & (position % 2 == 1)].mean() > 0.9 and snare[played & (position % 2 == 0)].mean() < 0.1
    # each part keeps its instrument family: the bass stem is the bass, the piano the piano; "other" names none
    assert song.features[:, names.index("family_bass")].mean() > 0.9
    assert song.features[:, names.index("family_piano")].mean() > 0.9
    assert not song.features[:, [names.index(f"family_{f}") for f in ("pipe", "reed", "ensemble")]].any()


def test_a_drum_stem_is_heard_as_kick_snare_and_hats(performed_stems):
    import mir_eval
    import soundfile

    from bat.ingest.drum_audio import transcribe_drums

    performance, folder = performed_stems
    samples, rate = soundfile.read(folder / "drums.wav", dtype="float32", always_2d=True)
    hits = transcribe_drums(samples.mean(axis=1), rate)
    played = next(i for i in performance.midi.instruments if i.is_drum).notes
    for key in (36, 38, 42):
        truth = np.array(sorted(n.start for n in played if n.pitch == key))
        assert mir_eval.onset.f_measure(truth, hits.start[hits.pitch == key], window=0.05)[0] >= 0.9, key


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_each_stem_layout_is_one_song_and_other_folders_are_files(tmp_path):
    demucs = tmp_path / "separated" / "htdemucs" / "song one"
    for name in ("vocals", "drums", "bass", "other"):
        _touch(demucs / f"{name}.wav")
    musdb = tmp_path / "musdb" / "song two"
    for name in ("mixture", "vocals", "accompaniment"):
        _touch(musdb / f"{name}.wav")
    slakh = tmp_path / "slakh" / "Track00001"
    _touch(slakh / "mix.flac")
    _touch(slakh / "all_src.mid")
    _touch(slakh / "MIDI" / "S00.mid")
    for stem in ("S00", "S01"):
        _touch(slakh / "stems" / f"{stem}.flac")
    (slakh / "metadata.yaml").write_text("stems:\n  S00: {inst_class: Drums, is_drum: true, program_num: 0}\n"
                                         "  S01: {inst_class: Bass, is_drum: false, program_num: 34}\n")
    medley = tmp_path / "medley" / "Artist_Song"
    _touch(medley / "Artist_Song_MIX.wav")
    _touch(medley / "Artist_Song_STEMS" / "Artist_Song_STEM_01.wav")
    _touch(medley / "Artist_Song_STEMS" / "Artist_Song_STEM_02.wav")
    (medley / "Artist_Song_METADATA.yaml").write_text(
        "stems:\n  S01: {filename: Artist_Song_STEM_01.wav, instrument: drum set}\n"
        "  S02: {filename: Artist_Song_STEM_02.wav, instrument: male singer}\n")
    two_stems = tmp_path / "separated" / "htdemucs" / "song three"  # demucs --two-stems vocals
    for name in ("vocals", "no_vocals"):
        _touch(two_stems / f"{name}.wav")
    loose = tmp_path / "loose"  # songs that happen to share a folder are songs of their own, whatever their names say
    for name in ("first song.wav", "Bass Groove.mp3", "Drum Fill.wav", "tune.mid"):
        _touch(loose / name)
    _touch(tmp_path / "lonely" / "vocals.wav")  # one part alone is just an audio file

    found = expand_inputs([str(tmp_path)])
    songs = [demucs, two_stems, musdb, slakh, medley, *loose.iterdir(), tmp_path / "lonely" / "vocals.wav"]
    assert sorted(found) == sorted(str(p) for p in songs)
    assert expand_inputs([str(demucs)]) == [str(demucs)]
    assert not is_stem_folder(loose) and not is_stem_folder(tmp_path / "lonely")

    def manifest(folder):
        data = bundle_stems(folder)
        assert is_stem_bundle(data)
        import io
        import tarfile

        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return json.loads(tar.extractfile("BAT_STEMS.json").read())

    assert [s["program"] for s in manifest(demucs)["stems"]] == [33, DRUM_PROGRAM, UNKNOWN_PROGRAM, 53]  # bass, drums, other, vocals
    assert [s["program"] for s in manifest(two_stems)["stems"]] == [UNKNOWN_PROGRAM, 53]  # no_vocals, vocals
    assert manifest(musdb)["mix"] == "mix/mixture.wav" and len(manifest(musdb)["stems"]) == 2
    assert [s["program"] for s in manifest(slakh)["stems"]] == [DRUM_PROGRAM, 34] and manifest(slakh)["mix"] == "mix/mix.flac"
    assert [s["program"] for s in manifest(medley)["stems"]] == [DRUM_PROGRAM, 53]


def test_the_bundle_is_the_songs_identity(tmp_path):
    import os

    folder = tmp_path / "song"
    _touch(folder / "vocals.wav", b"voice")
    _touch(folder / "bass.wav", b"bass")
    first = read_song(str(folder))
    os.utime(folder / "bass.wav", (1, 1))  # a copy or a touch is the same song
    assert read_song(str(folder)) == first
    _touch(folder / "bass.wav", b"bass, played again")
    assert read_song(str(folder)) != first
    with pytest.raises(ParseError, match="one song only when it holds that song's stems"):
        read_song(str(tmp_path))


def test_a_stem_that_cannot_be_decoded_fails_the_song_by_name(performed_stems, tmp_path):
    _, folder = performed_stems
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bass.wav").write_bytes((folder / "bass.wav").read_bytes())
    (broken / "vocals.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with pytest.raises(ParseError, match=r"broken/vocals.wav: cannot decode the audio"):
        featurize_path(broken)


@pytest.mark.slow
def test_bat_featurize_gives_every_kind_of_input_its_grid(performed_stems, tmp_path):
    """The issue's acceptance: one folder of quantized MIDI, performance MIDI, audio and stems; every song gets a grid
    with its source and confidence, and a bad song of stems is recorded with its reason while the run goes on."""
    import shutil

    from typer.testing import CliRunner

    from bat.cli import app
    from bat.store.reader import open_store

    _, stems = performed_stems
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write(groove(bars=8), corpus, "quantized.mid")
    performance = humanize(write(groove(bars=12), tmp_path, "to_play.mid"), seed=5)
    performance.midi.write(str(corpus / "performed.mid"))
    render(corpus / "performed.mid", corpus / "played.wav")
    shutil.copytree(stems, corpus / "band")
    _touch(corpus / "silent band" / "drums.wav", b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    _touch(corpus / "silent band" / "bass.wav", b"RIFF\x00\x00\x00\x00WAVEnot really audio")

    store = str(tmp_path / "store.zarr")
    command = ["featurize", str(corpus), "--store", store, "--json", "--workers", "1", "--timeout", "120"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    songs = open_store(store).songs.set_index("source")
    sources = {Path(s).name: row for s, row in songs.iterrows()}
    assert {name: row["beat_source"] for name, row in sources.items()} == {
        "quantized.mid": "tempo_map", "performed.mid": "madmom_midi", "played.wav": "madmom_audio", "band": "madmom_audio",
    }
    assert all(0.0 < row["beat_confidence"] <= 1.0 for row in sources.values())
    assert sources["band"]["grid_evidence"].startswith("stems:")
    failures = open_store(store).failures
    assert len(failures) == 1 and failures.iloc[0]["source"].endswith("silent band")
    assert "cannot decode the audio" in failures.iloc[0]["message"]


def test_a_silent_stem_adds_nothing_and_all_silent_is_an_empty_song(performed_stems, tmp_path):
    import soundfile

    from bat.errors import EmptyError
    from bat.ingest.stems import load_stems

    _, folder = performed_stems
    band = tmp_path / "band"
    band.mkdir()
    (band / "drums.wav").write_bytes((folder / "drums.wav").read_bytes())
    soundfile.write(band / "vocals.wav", np.zeros(22050 * 3, np.float32), 22050)  # a separator's empty vocals
    song, mix, rate = load_stems(str(band), read_song(str(band)))
    assert len(song.notes) == 0 and len(song.drums) > 50 and set(np.unique(song.drums.pitch)) == {36, 38, 42}
    assert mix.size / rate == pytest.approx(soundfile.info(band / "drums.wav").duration, abs=0.01)  # the stems' sum
    silent = tmp_path / "silent"
    silent.mkdir()
    for name in ("drums", "bass"):
        soundfile.write(silent / f"{name}.wav", np.zeros(22050 * 3, np.float32), 22050)
    with pytest.raises(EmptyError, match="no notes or drum hits were transcribed from any stem"):
        featurize_path(silent)
