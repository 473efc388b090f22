"""One song from several audio stems: each part transcribed alone, then packed like a multitrack MIDI file's tracks.

A folder is a song of stems when it is laid out as the common multitrack and source-separation sets lay it out:

- Demucs, Spleeter, MUSDB18: ``<song>/{vocals,drums,bass,other,...}.wav``, perhaps beside ``mixture.wav``: at least
  two audio files, every one named exactly as a part (``PART_NAMES``) or as the mix (a folder of songs called
  "Bass Groove.mp3" and "Drum Fill.wav" is not one song);
- Slakh2100: ``<track>/stems/S00.flac...`` beside ``<track>/mix.flac`` and ``metadata.yaml`` (each stem's GM program
  and whether it is drums);
- MedleyDB: ``<song>/<song>_STEMS/<song>_STEM_01.wav...`` beside ``<song>_MIX.wav`` and ``<song>_METADATA.yaml``
  (each stem's instrument).

Transcribing each part alone is why stems are worth having: basic-pitch hears one instrument far better than the
mix, each part keeps its own track and instrument family, and a drum stem gets drum hits
(``bat.ingest.drum_audio``), which place the bars. The beats are tracked on the mix (the folder's own, or the
stems' sum). Everything else in the folder (Slakh's MIDI, MedleyDB's raw tracks) belongs to the same song and is
not featurized again.

A song of stems travels through a run as one item, like a file: ``bundle_stems`` packs the folder into an
uncompressed tar whose first member, ``BAT_STEMS.json``, says what each stem is. The bundle is deterministic (sorted,
no times or owners), so its content hash identifies the song in the store and a rerun skips it.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bat.errors import EmptyError, ParseError, ReadError, TooLargeError
from bat.ingest.audio import (
    AUDIO_SUFFIXES, DEFAULT_TRANSCRIPTION, TranscriptionConfig, decode_audio, transcribe, transcribed_song,
)
from bat.ingest.song import UNKNOWN_PROGRAM, NoteArray, Song

MANIFEST = "BAT_STEMS.json"
STEMS_MAX_BYTES = 1 << 30  # a whole song's stems: 16 Slakh FLACs, or MUSDB's five 5-minute WAVs, fit well within
MIX_WORDS = ("mixture", "mix")
DRUM_PROGRAM = 128  # past GM's 0..127: the part is drums (SoundFonts keep their kits in bank 128)
# a part's description (Slakh's inst_class, MedleyDB's instrument: "drum set", "male singer") -> its GM program, by
# the first word that appears in it; DRUM_PROGRAM for drums. Programs pick the family bat.features.instruments reports.
ROLE_WORDS: tuple[tuple[str, int], ...] = (
    ("chromatic", 8), ("drum", DRUM_PROGRAM), ("percussion", DRUM_PROGRAM), ("kit", DRUM_PROGRAM),
    ("bass", 33), ("vocal", 53), ("voice", 53), ("vox", 53), ("sing", 53), ("choir", 52),
    ("piano", 0), ("keys", 4), ("organ", 19), ("guitar", 25), ("string", 48), ("violin", 40), ("cello", 42),
    ("brass", 61), ("trumpet", 56), ("sax", 65), ("flute", 73), ("pad", 89), ("synth", 81),
)

# the file names source separators write (Demucs, Spleeter, MUSDB18's, and a few more), each a whole name -> program
PART_NAMES: dict[str, int] = {
    "vocals": 53, "vocal": 53, "voice": 53, "drums": DRUM_PROGRAM, "drum": DRUM_PROGRAM, "percussion": DRUM_PROGRAM,
    "bass": 33, "piano": 0, "keys": 4, "guitar": 25, "strings": 48, "synth": 81, "pad": 89,
    **dict.fromkeys(("other", "accompaniment", "no_vocals", "instrumental"), UNKNOWN_PROGRAM),
}


@dataclass(frozen=True)
class Stem:
    """One part of the song: its member name in the bundle, and what it is."""

    name: str
    program: int  # GM program of its notes, UNKNOWN_PROGRAM, or DRUM_PROGRAM


def part_program(label: str) -> int | None:
    """The GM program a part's description implies (``ROLE_WORDS``), or None for one that names no part."""
    words = label.lower()
    return next((program for word, program in ROLE_WORDS if word in words), None)


def _part_name(path: Path) -> str | None:
    """The part a file is named as (``PART_NAMES``, whole name, any case, "-" or " " for "_"), or None."""
    name = re.sub(r"[\s-]+", "_", path.stem.strip().lower())
    return name if name in PART_NAMES else None


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(AUDIO_SUFFIXES))


def _is_mix(path: Path) -> bool:
    name = path.stem.lower()
    return name in MIX_WORDS or name.endswith("_mix")


def _stem_subfolder(folder: Path) -> Path | None:
    """Slakh's ``stems/`` or MedleyDB's ``<song>_STEMS/``, if it holds audio."""
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (sub.name.lower() == "stems" or sub.name.upper().endswith("_STEMS")) and _audio_files(sub):
            return sub
    return None


def is_stem_folder(folder: Path) -> bool:
    """Whether ``folder`` is one song of stems in one of the layouts of the module docstring."""
    if not folder.is_dir():
        return False
    if _stem_subfolder(folder) is not None:
        return True
    files = _audio_files(folder)
    parts = [p for p in files if not _is_mix(p)]
    return len(files) >= 2 and bool(parts) and all(_part_name(p) is not None for p in parts)


def stems_of(folder: Path) -> tuple[list[tuple[Path, int]], Path | None]:
    """(each stem's file and GM program, the mix file or None) of a stem folder."""
    sub = _stem_subfolder(folder)
    if sub is None:
        files = _audio_files(folder)
        mixes = [p for p in files if _is_mix(p)]
        return [(p, PART_NAMES[_part_name(p)]) for p in files if not _is_mix(p)], (mixes[0] if mixes else None)
    mixes = [p for p in _audio_files(folder) if _is_mix(p)]
    described = _described_programs(folder)
    stems = []
    for path in _audio_files(sub):
        program = described.get(path.stem, described.get(path.name, part_program(path.stem)))
        stems.append((path, UNKNOWN_PROGRAM if program is None else program))
    return stems, (mixes[0] if mixes else None)


def _described_programs(folder: Path) -> dict[str, int]:
    """Stem name -> GM program from Slakh's ``metadata.yaml`` or MedleyDB's ``*_METADATA.yaml``, where present."""
    import yaml

    programs: dict[str, int] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            described = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue  # a stem without a description is still a stem: its name says what it can
        for key, stem in (described.get("stems") or {}).items():
            if not isinstance(stem, dict):
                continue
            if stem.get("is_drum"):
                program = DRUM_PROGRAM
            elif isinstance(stem.get("program_num"), int):
                program = int(stem["program_num"])
            else:
                program = part_program(str(stem.get("instrument") or stem.get("inst_class") or ""))
            if program is not None:
                programs[str(key)] = program
                if stem.get("filename"):
                    programs[str(stem["filename"])] = program
    return programs


def bundle_stems(folder: str | os.PathLike, max_bytes: int = STEMS_MAX_BYTES) -> bytes:
    """The folder's stems (and mix) as one deterministic uncompressed tar, ``BAT_STEMS.json`` first."""
    folder = Path(folder)
    if not is_stem_folder(folder):
        raise ParseError(str(folder), "a folder is featurized as one song only when it holds that song's stems, laid out as "
                         "Demucs/MUSDB (vocals.wav, drums.wav...), Slakh (stems/, mix.flac) or MedleyDB (*_STEMS/) lay them out")
    stems, mix = stems_of(folder)
    members = [(f"stems/{k:02d}_{path.name}", path) for k, (path, _) in enumerate(stems)]
    if mix is not None:
        members.append((f"mix/{mix.name}", mix))
    try:
        total = sum(path.stat().st_size for _, path in members)
        if total > max_bytes:
            raise TooLargeError(str(folder), f"the stems are {total} bytes, over the {max_bytes}-byte limit")
        contents = [path.read_bytes() for _, path in members]
    except OSError as error:
        raise ReadError(str(folder), f"cannot read a stem: {error}") from error
    manifest = {
        "stems": [asdict(Stem(name, program)) for (name, _), (_, program) in zip(members, stems)],
        "mix": f"mix/{mix.name}" if mix is not None else None,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, MANIFEST, json.dumps(manifest, sort_keys=True).encode())
        for (name, _), content in zip(members, contents):
            _add(tar, name, content)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def is_stem_bundle(data: bytes) -> bool:
    """A ``bundle_stems`` tar: the ustar magic, and the manifest as the first member's name."""
    return data[257:262] == b"ustar" and data[: len(MANIFEST)] == MANIFEST.encode()


def load_stems(
    source: str, data: bytes, config: TranscriptionConfig = DEFAULT_TRANSCRIPTION
) -> tuple[Song, np.ndarray, int]:
    """(Song of every stem's notes, one track per stem, drums apart; the mix's mono samples; its sample rate)."""
    from bat.ingest.drum_audio import transcribe_drums

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            manifest = json.loads(tar.extractfile(MANIFEST).read())
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile() and m.name != MANIFEST}
        stems = [Stem(**stem) for stem in manifest["stems"]]
    except (tarfile.TarError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ParseError(source, f"not a bundle of stems ({error})") from error
    pitched, drums, decoded = [], [], []
    for track, stem in enumerate(stems):
        samples, rate = decode_audio(f"{source}/{_file_name(stem.name)}", files[stem.name])
        samples = samples[: int(config.max_seconds * rate)]
        decoded.append((samples, rate))
        if stem.program == DRUM_PROGRAM:
            drums.append(_on_track(transcribe_drums(samples, rate), track, 0))
        else:
            pitched.append(_on_track(transcribe(samples, rate, config), track, stem.program))
    notes, drum_notes = NoteArray.concat(pitched), NoteArray.concat(drums)
    if len(notes) + len(drum_notes) == 0:
        raise EmptyError(source, "no notes or drum hits were transcribed from any stem (silence, or no pitched sound)")
    if manifest.get("mix"):
        mix, rate = decode_audio(f"{source}/{_file_name(manifest['mix'])}", files[manifest["mix"]])
        mix = mix[: int(config.max_seconds * rate)]
    else:
        mix, rate = _sum(decoded)
    defaults = [f"notes=basic-pitch transcription of {len(pitched)} stems"]
    if drums:
        defaults.append(f"drums=NMF drum transcription of {len(drums)} stems")
    return transcribed_song(source, notes, drum_notes, mix.size / rate, defaults), mix, rate


def _file_name(member: str) -> str:
    return re.sub(r"^stems/\d+_|^mix/", "", member)


def _on_track(notes: NoteArray, track: int, program: int) -> NoteArray:
    count = len(notes)
    programs, tracks = np.full(count, program, np.int16), np.full(count, track, np.int16)
    return NoteArray(notes.start, notes.end, notes.pitch, notes.velocity, programs, tracks)


def _sum(decoded: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    """The stems' sum at the highest of their sample rates: the mix a folder without one would have had."""
    import librosa

    rate = max(r for _, r in decoded)
    parts = [s if r == rate else librosa.resample(s, orig_sr=r, target_sr=rate, res_type="soxr_hq") for s, r in decoded]
    mix = np.zeros(max(p.size for p in parts), np.float32)
    for part in parts:
        mix[: part.size] += part
    return mix, rate
