"""Featurize files in a child process, so that no file can hang or crash the run.

A per-file alarm stops slow Python work; a file that hangs inside C code or crashes the parser (a segfault on
corrupt bytes) is caught by the parent, which kills the child, records the file, and starts a new child for
the remaining files. The child is a fresh interpreter (fork+exec), so this is safe inside threaded Dask
workers and does not depend on how the parent's __main__ was started.

An item is a path (or fsspec URL) the child reads itself, or ``(source, bytes)`` for a file already in
memory (an archive member streamed by the driver).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bat.errors import BatError
from bat.featurize import FeaturizedSong, content_hash, featurize_bytes, file_limits, read_song
from bat.ingest.midi import DEFAULT_LIMITS, MidiLimits

Item = str | tuple[str, bytes]  # a path or URL, or (source name, bytes already read)

KILL_GRACE = 5.0  # seconds past the per-file limit before the parent kills a child stuck in C code
STARTUP_GRACE = 60.0  # seconds for a child's interpreter to start and import numpy/symusic on a busy machine


@dataclass
class Outcome:
    """What happened to one file: ``song`` when featurized, else ``status`` and the reason."""

    index: int
    source: str
    status: str  # "ok", "skipped" (content already in the store), or a failure category
    song: FeaturizedSong | None = None
    content_hash: str = ""
    message: str = ""


class KnownHashes:
    """Content hashes already in the store, compact enough to ship to every worker (8 bytes a song)."""

    def __init__(self, hashes=()):
        self.keys = np.unique(np.array([int(h[:16], 16) for h in hashes if h], dtype=np.uint64))

    def __contains__(self, digest: str) -> bool:
        key = np.uint64(int(digest[:16], 16))
        at = np.searchsorted(self.keys, key)
        return bool(at < self.keys.size and self.keys[at] == key)


class _FileTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _FileTimeout()


def source_of(item: Item) -> str:
    return item[0] if isinstance(item, tuple) else item


def _known_hash(item: Item) -> str:
    """The content hash of an item already in memory (so a file that kills its reader is still identified)."""
    return content_hash(item[1]) if isinstance(item, tuple) else ""


def _read(item: Item, limits: MidiLimits) -> bytes:
    if isinstance(item, tuple):
        return item[1]
    if "://" in item and not item.startswith("file://"):
        from bat.ingest.archive import read_url

        return read_url(item, file_limits(item, limits).max_bytes)  # audio files get a byte limit of their own
    return read_song(item[len("file://") :] if item.startswith("file://") else item, limits)


def _featurize_one(index: int, item: Item, meter, limits, known: KnownHashes, timeout: float) -> Outcome:
    digest, source = "", source_of(item)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        data = _read(item, limits)
        digest = content_hash(data)
        if digest in known:
            return Outcome(index, source, "skipped", content_hash=digest)
        return Outcome(index, source, "ok", song=featurize_bytes(source, data, meter=meter, limits=limits), content_hash=digest)
    except BatError as error:
        return Outcome(index, source, error.category, content_hash=digest, message=error.message)
    except _FileTimeout:
        return Outcome(index, source, "timeout", content_hash=digest, message=f"featurizing took over {timeout:g} s")
    except (MemoryError, RecursionError) as error:
        return Outcome(index, source, "too_large", content_hash=digest, message=f"{type(error).__name__}: {error}")
    except Exception as error:  # a bug in bat on this input: record it, don't lose the run
        return Outcome(index, source, "internal", content_hash=digest, message=f"{type(error).__name__}: {error}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def child_main() -> None:
    """Entry point of the child (``python -m bat.run.child``): a request on stdin, outcomes on stdout."""
    signal.signal(signal.SIGALRM, _on_alarm)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the parent's pipe
    sources, first, meter, limits, known, timeout = pickle.loads(stdin.read())
    for k, item in enumerate(sources):
        _send(stdout, _featurize_one(first + k, item, meter, limits, known, timeout))
    _send(stdout, None)


def _send(stream, message) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


class _Reader:
    """Length-prefixed pickles from a child's stdout, with a deadline per message."""

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, bytearray()

    def _fill(self, size: int, deadline: float) -> bool:
        while len(self.buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                return False
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        return True

    def receive(self, timeout: float):
        """The next message; TimeoutError if none came in time, EOFError if the child died."""
        deadline = time.monotonic() + timeout
        if not self._fill(8, deadline):
            raise TimeoutError
        (size,) = struct.unpack("<Q", bytes(self.buffer[:8]))
        if not self._fill(8 + size, deadline):
            raise TimeoutError
        message = pickle.loads(bytes(self.buffer[8 : 8 + size]))
        del self.buffer[: 8 + size]
        return message


def featurize_isolated(
    sources: list[Item],
    meter: str | None = None,
    timeout: float = 60.0,
    known: KnownHashes | None = None,
    limits: MidiLimits = DEFAULT_LIMITS,
) -> Iterator[Outcome]:
    """Yield one Outcome per source, in order, whatever the files do to the process reading them."""
    known = known or KnownHashes()
    next_index = 0
    while next_index < len(sources):
        child = subprocess.Popen(
            [sys.executable, "-m", "bat.run.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            child.stdin.write(pickle.dumps((sources[next_index:], next_index, meter, limits, known, timeout)))
            child.stdin.close()
            reader = _Reader(child.stdout.fileno())
            first_message = True
            while next_index < len(sources):
                try:
                    # the first message also waits for the child's interpreter and imports to start
                    outcome = reader.receive(timeout + KILL_GRACE + (STARTUP_GRACE if first_message else 0.0))
                except TimeoutError:
                    yield Outcome(next_index, source_of(sources[next_index]), "timeout",
                                  content_hash=_known_hash(sources[next_index]),
                                  message=f"featurizing took over {timeout:g} s (killed)")
                    next_index += 1
                    break
                except EOFError:
                    code = child.wait()
                    yield Outcome(next_index, source_of(sources[next_index]), "parse",
                                  content_hash=_known_hash(sources[next_index]),
                                  message=f"the reader crashed on this file (exit code {code})")
                    next_index += 1
                    break
                first_message = False
                if outcome is None:
                    break
                yield outcome
                next_index = outcome.index + 1
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            child.stdout.close()
