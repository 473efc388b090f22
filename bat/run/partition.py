"""A partition: the unit of parallel work. A worker featurizes its files and writes them as one store part.

Runners (the local CLI runner, Dask tasks of the featurize-corpus flow) call ``featurize_partition`` on a
worker and hand its small result to the single committer; nothing per-beat travels back to the driver.
A partition's items are paths (read on the worker) or ``(source, bytes)`` archive members.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from bat.run.isolation import Item, KnownHashes, featurize_isolated
from bat.store.writer import write_part


@dataclass
class PartitionResult:
    """Song rows to commit, failure rows to record, and counts for progress reports."""

    partition: int
    songs: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    skipped: int = 0
    beats: int = 0
    seconds: float = 0.0

    @property
    def files(self) -> int:
        return len(self.songs) + len(self.failures) + self.skipped

    def failure_counts(self) -> Counter:
        return Counter(row["category"] for row in self.failures)


def featurize_partition(
    partition: int,
    sources: list[Item],
    store_path: str,
    meter: str | None = None,
    timeout: float = 60.0,
    known: KnownHashes | None = None,
) -> PartitionResult:
    started = time.perf_counter()
    result = PartitionResult(partition)
    songs = []
    for outcome in featurize_isolated(sources, meter=meter, timeout=timeout, known=known):
        if outcome.status == "ok":
            songs.append(outcome.song)
        elif outcome.status == "skipped":
            result.skipped += 1
        else:
            result.failures.append(
                {"source": outcome.source, "content_hash": outcome.content_hash, "category": outcome.status,
                 "message": outcome.message}
            )
    result.songs = write_part(store_path, songs)
    result.beats = sum(song.n_beats for song in songs)
    result.seconds = time.perf_counter() - started
    return result
