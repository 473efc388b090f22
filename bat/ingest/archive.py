"""Corpora that are not a folder of local files: tar archives read without unpacking, and fsspec URLs.

The Lakh MIDI Dataset ships as ``lmd_full.tar.gz`` (176k files). Unpacking it costs an hour of small-file
I/O and twice the disk, and gzip cannot seek, so bat streams the archive once, front to back, and hands out
``(source, bytes)`` members; a member's source name is ``<archive>::<member path>``, so a failure row still
says which file it was. Archives and plain files may live behind any fsspec URL (``s3://``, ``gs://``,
``https://``...); the protocol's package (s3fs, gcsfs...) must be installed.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from bat.errors import ReadError, TooLargeError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MEMBER_SEPARATOR = "::"  # "<archive>::<member>": the source name of a file inside an archive


def is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def is_url(path: str) -> bool:
    """True for fsspec URLs other than plain local files (``file://`` paths are read like local ones)."""
    return "://" in path and not path.startswith("file://")


def member_source(archive: str, member: str) -> str:
    return f"{archive}{MEMBER_SEPARATOR}{member}"


class _CountingReader:
    """A read-only stream that counts the (compressed) bytes taken from it, for progress reports."""

    def __init__(self, raw):
        self.raw, self.position = raw, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.position += len(data)
        return data


@dataclass
class ArchiveReader:
    """Stream an archive's MIDI (and audio) members once, in archive order, as ``(source, bytes)``.

    ``fraction_read`` tells how far through the (compressed) archive the stream is, which is the only
    progress measure there is: counting the members first would mean decompressing everything twice.
    A member over ``max_bytes`` is read only up to ``max_bytes + 1`` bytes, enough for the featurizer to
    record it as too large without holding it in memory.
    """

    url: str
    max_bytes: int = 32 * 1024 * 1024
    size: int | None = None  # of the archive file, when the filesystem knows it
    _counter: _CountingReader | None = None

    @property
    def fraction_read(self) -> float | None:
        if not self.size or self._counter is None:
            return None
        return min(1.0, self._counter.position / self.size)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        import fsspec

        from bat.ingest.audio import AUDIO_MAX_BYTES, is_audio
        from bat.ingest.sources import is_music

        try:
            handle = fsspec.open(self.url, "rb").open()
        except (OSError, ValueError) as error:
            raise ReadError(self.url, f"cannot open the archive: {error}") from error
        try:
            self.size = getattr(handle, "size", None) or _size(handle)
            self._counter = _CountingReader(handle)
            with tarfile.open(fileobj=self._counter, mode="r|*") as tar:  # "|": a stream, no seeking
                for member in tar:
                    if not member.isfile() or not is_music(member.name):
                        continue
                    cap = max(self.max_bytes, AUDIO_MAX_BYTES) if is_audio(member.name) else self.max_bytes
                    data = tar.extractfile(member).read(cap + 1)
                    yield member_source(self.url, member.name), data
        except tarfile.TarError as error:
            raise ReadError(self.url, f"not a readable tar archive: {error}") from error
        finally:
            handle.close()


def _size(handle) -> int | None:
    try:
        here = handle.tell()
        end = handle.seek(0, 2)
        handle.seek(here)
        return end
    except (OSError, AttributeError, ValueError):
        return None


def expand_url(url: str) -> list[str]:
    """The MIDI and audio files a URL names: a file, a folder (searched recursively) or a glob, as full URLs."""
    import fsspec

    from bat.ingest.sources import is_music

    fs, _, paths = fsspec.get_fs_token_paths(url)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    found: list[str] = []
    for path in paths:
        if fs.isdir(path):
            found += sorted(p for p in fs.find(path) if is_music(p))
        elif fs.exists(path):
            found.append(path)
    if not found:
        raise FileNotFoundError(f"{url}: no such file, folder or pattern")
    return [p if "://" in p else f"{protocol}://{p}" for p in found]


def read_url(source: str, max_bytes: int) -> bytes:
    """A file's bytes over fsspec; raises the same failure categories as reading a local file."""
    import fsspec

    try:
        with fsspec.open(source, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise ReadError(source, f"cannot read the file: {error}") from error
    if len(data) > max_bytes:
        raise TooLargeError(source, f"file is over the {max_bytes}-byte limit")
    return data
