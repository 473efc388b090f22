"""What ``bat featurize`` and the featurize-corpus flow accept as input, expanded to a list of files.

Inputs may be MIDI or audio files (WAV, FLAC, MP3, Ogg), folders (searched recursively; a folder laid out as one
song's stems is that one song, ``bat.ingest.stems``), glob patterns, or
manifests (a ``manifest.csv`` written by ``bat corpus``, or a text file with one path per line), local or behind an fsspec URL
(``s3://bucket/lmd/``); and tar archives (``lmd_full.tar.gz``), which ``open_corpus`` streams without
unpacking (see ``bat.ingest.archive``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bat.ingest.archive import ArchiveReader, expand_url, is_archive, is_url
from bat.ingest.stems import is_stem_folder

MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")  # as bat.ingest.audio reads them


def is_midi(path: str) -> bool:
    return path.lower().endswith(MIDI_SUFFIXES)


def is_music(path: str) -> bool:
    """A file bat featurizes: MIDI, or audio that it transcribes."""
    return path.lower().endswith(MIDI_SUFFIXES + AUDIO_SUFFIXES)


def expand_inputs(inputs: Iterable[str], limit: int | None = None) -> list[str]:
    """Files named by ``inputs``, deduplicated, in a stable order (so partitions are reproducible)."""
    found: list[str] = []
    for item in inputs:
        path = Path(item)
        if is_url(item):
            found += expand_url(item)
        elif path.is_dir():
            found += music_in_folder(path)
        elif path.is_file() and path.suffix.lower() in (".csv", ".txt", ".lst"):
            found += _manifest_paths(path)
        elif path.is_file():
            found.append(str(path))
        elif any(ch in item for ch in "*?["):
            found += sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            raise FileNotFoundError(f"{item}: no such file, folder or pattern")
    unique = list(dict.fromkeys(found))
    return unique[:limit] if limit is not None else unique


def music_in_folder(folder: Path) -> list[str]:
    """The music files under ``folder``, sorted, with each song of stems as its folder (its files not again)."""
    found = []
    for top, subfolders, files in os.walk(folder):
        if is_stem_folder(Path(top)):
            found.append(top)
            subfolders.clear()
            continue
        subfolders.sort()
        found += [os.path.join(top, name) for name in files if is_music(name)]
    return sorted(found)


def _manifest_paths(path: Path) -> list[str]:
    if path.suffix.lower() == ".csv":
        import pandas as pd

        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "path" not in table.columns:
            raise ValueError(f"{path}: a manifest needs a 'path' column")
        if "status" in table.columns:
            table = table[table["status"] == "ok"]
        return [str((path.parent / p).resolve()) for p in table["path"]]
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [str((path.parent / line).resolve()) for line in lines if line and not line.startswith("#")]


@dataclass
class Corpus:
    """What a run featurizes: files the workers read themselves, then archives the driver streams."""

    files: list[str] = field(default_factory=list)  # local paths or fsspec URLs
    archives: list[str] = field(default_factory=list)  # tar archives, streamed member by member
    limit: int | None = None  # of files in all, archive members included
    readers: list[ArchiveReader] = field(default_factory=list, repr=False)

    @property
    def total(self) -> int | None:
        """How many files the run will see, or None while archive members are still to be counted."""
        return len(self.files) if not self.archives or self.limit == len(self.files) else None

    @property
    def fraction_read(self) -> float | None:
        """How far through the archives the stream is (archives only)."""
        done = [r.fraction_read for r in self.readers]
        if not self.archives or any(f is None for f in done):
            return None
        return sum(done) / len(self.archives)

    def items(self) -> Iterator[str | tuple[str, bytes]]:
        """Each file once, in a stable order: a path or URL, or ``(source, bytes)`` for an archive member."""
        yield from self.files
        left = None if self.limit is None else self.limit - len(self.files)
        for archive in self.archives:
            if left is not None and left <= 0:
                return
            reader = ArchiveReader(archive)
            self.readers.append(reader)
            for member in reader:
                yield member
                if left is not None:
                    left -= 1
                    if left <= 0:
                        return

    def describe(self) -> str:
        parts = [f"{len(self.files)} files"] if self.files or not self.archives else []
        parts += [f"archive {a}" for a in self.archives]
        return " + ".join(parts) + (f" (at most {self.limit})" if self.limit is not None else "")


def open_corpus(inputs: str | Iterable[str], limit: int | None = None) -> Corpus:
    """A corpus from what a user typed: archives are kept for streaming, everything else is expanded."""
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    archives = [item for item in inputs if is_archive(item)]
    for archive in archives:
        if not is_url(archive) and not Path(archive).is_file():
            raise FileNotFoundError(f"{archive}: no such archive")
    files = expand_inputs([item for item in inputs if not is_archive(item)], limit=limit)
    return Corpus(files=files, archives=archives, limit=limit)
