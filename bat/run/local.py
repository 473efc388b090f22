"""Featurize many files on this machine: partitions in parallel, one committer, a progress callback."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from bat.run.isolation import KnownHashes
from bat.run.partition import PartitionResult, featurize_partition
from bat.store.writer import CommitResult, StoreWriter


@dataclass
class RunSummary:
    files: int = 0
    featurized: int = 0
    skipped: int = 0  # already in the store (same content), or a duplicate within the run
    failed: Counter = field(default_factory=Counter)
    beats: int = 0
    seconds: float = 0.0

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0

    def add(self, result: PartitionResult, commit: CommitResult) -> None:
        self.files += result.files
        self.featurized += commit.songs_added
        self.skipped += result.skipped + commit.duplicates_skipped
        self.failed.update(result.failure_counts())
        self.beats += commit.beats_added

    def as_dict(self) -> dict:
        return {
            "files": self.files, "featurized": self.featurized, "skipped": self.skipped,
            "failed": dict(self.failed), "beats": self.beats, "seconds": round(self.seconds, 2),
            "files_per_second": round(self.files_per_second, 1),
        }


def partitions(sources: list[str], size: int) -> list[list[str]]:
    return [sources[i : i + size] for i in range(0, len(sources), size)]


def run_local(
    sources: list[str],
    store_path: str,
    workers: int | None = None,
    partition_size: int = 64,
    meter: str | None = None,
    timeout: float = 60.0,
    on_progress: Callable[[PartitionResult, RunSummary], None] | None = None,
) -> RunSummary:
    """Featurize ``sources`` into the store; songs already there are skipped by content hash."""
    started = time.perf_counter()
    summary = RunSummary()
    workers = workers or os.cpu_count() or 1
    with StoreWriter(store_path) as writer:
        writer.vacuum()
        known = KnownHashes(writer.known_hashes | writer.failed_hashes)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(featurize_partition, k, part, store_path, meter, timeout, known)
                for k, part in enumerate(partitions(sources, partition_size))
            ]
            for future in as_completed(futures):
                result = future.result()
                commit = writer.commit(result.songs, result.failures)
                summary.add(result, commit)
                summary.seconds = time.perf_counter() - started
                if on_progress:
                    on_progress(result, summary)
    summary.seconds = time.perf_counter() - started
    return summary
