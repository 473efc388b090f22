"""Featurize a corpus on a Dask cluster: partitions fan out to workers, one committer streams them into the store.

The driver (the featurize-corpus flow's process) reads the corpus lazily, groups files into partitions and
keeps only a few partitions per worker in flight, so its memory stays flat however big the corpus: nothing
holds all results, and each finished partition is committed (``StoreWriter.commit``) as soon as it returns.
A worker featurizes its partition in an isolated child process and writes one store part itself; only
small song and failure rows come back.

Failures come in two kinds. A bad file is a row in the partition's result (category parse, empty, timeout...)
and is never retried. A partition that raised or lost its worker (a worker killed, an OSError writing its
part) is resubmitted, up to ``max_attempts`` times; its half-written part, if any, is never committed and
``StoreWriter.vacuum`` deletes it at the next run's start.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bat.run.isolation import Item, KnownHashes, source_of
from bat.run.local import RunSummary
from bat.run.partition import PartitionResult, featurize_partition
from bat.store.writer import StoreWriter


@dataclass(frozen=True)
class FanOutConfig:
    """How a corpus is cut up and how hard a partition is retried."""

    partition_size: int = 256  # files per partition and store part: a child start (~0.3 s) per 256 files
    meter: str | None = None  # keep only songs in this meter, e.g. "4/4"
    timeout: float = 60.0  # seconds per file before it is recorded as a timeout
    in_flight_per_worker: int = 2  # partitions queued per worker thread: busy workers, flat driver memory
    max_attempts: int = 3  # per partition, for transient errors only


@dataclass
class FanOutSummary(RunSummary):
    """A run's counts (files, featurized, skipped, failed by category, beats) plus how the fan-out went."""

    partitions: int = 0
    resubmitted: int = 0  # partitions run again after a lost worker or an I/O error
    workers: int = 0

    def as_dict(self) -> dict:
        return {**super().as_dict(), "beats_per_second": round(self.beats / self.seconds, 1) if self.seconds else 0.0,
                "partitions": self.partitions, "resubmitted": self.resubmitted, "workers": self.workers}


class PartitionFailed(RuntimeError):
    """A partition kept failing (or failed with a bug); committed partitions are safe, a rerun resumes."""


def is_transient(error: BaseException) -> bool:
    """Errors a second try can get past: lost workers, dropped connections, I/O errors."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    return isinstance(error, (OSError, KilledWorker, FutureCancelledError, TimeoutError, EOFError))


@contextmanager
def dask_client(address: str | None = None, workers: int | None = None) -> Iterator:
    """A client of the cluster at ``address`` (or DASK_SCHEDULER_ADDRESS), else of a new LocalCluster.

    The local cluster has one single-threaded worker process per core (``workers`` to change it): each
    worker runs its own featurizing child, so more threads per worker would only share one core.
    """
    import dask
    from distributed import Client, LocalCluster

    address = address or dask.config.get("scheduler-address", None)
    if address:
        with Client(address) as client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    scheduler_logs = logging.getLogger("distributed")  # the local scheduler and nannies run in this process
    level = scheduler_logs.level
    scheduler_logs.setLevel(logging.WARNING)
    try:
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            with Client(cluster) as client:
                yield client
    finally:
        scheduler_logs.setLevel(level)


class _ReadAhead:
    """Partitions produced by a background thread into a bounded queue (archive decompression overlaps work).

    Archive members whose content is already in the store are dropped here and counted with the next
    partition, so a resumed run over an archive ships nothing it has done before.
    """

    _DONE = object()

    def __init__(self, items: Iterable[Item], size: int, depth: int, known: KnownHashes):
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.items, self.size, self.known = items, size, known
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._produce, name="bat-read-ahead", daemon=True)
        self.thread.start()

    def _put(self, entry) -> bool:
        while not self.stopping.is_set():
            try:
                self.queue.put(entry, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            batch, skipped = [], 0
            for item in self.items:
                if isinstance(item, tuple) and hashlib.sha256(item[1]).hexdigest() in self.known:
                    skipped += 1
                    continue
                batch.append(item)
                if len(batch) == self.size:
                    if not self._put((batch, skipped)):
                        return
                    batch, skipped = [], 0
            if batch and not self._put((batch, skipped)):
                return
            self._put((self._DONE, 0 if batch else skipped))
        except BaseException as error:  # handed to the driver, which raises it
            self._put((error, 0))

    def next(self, block: bool) -> tuple[list[Item] | None, int]:
        """(next partition, archive members skipped before it); the partition is None when the corpus is
        exhausted or, not blocking, when none is ready yet."""
        try:
            got, skipped = self.queue.get(block=block)
        except queue.Empty:
            return None, 0
        if got is self._DONE:
            self.queue.put((self._DONE, 0))  # stay exhausted for later calls
            return None, skipped
        if isinstance(got, BaseException):
            raise got
        return got, skipped

    def close(self) -> None:
        self.stopping.set()


def fan_out(
    client,
    items: Iterable[Item],
    writer: StoreWriter,
    known: KnownHashes,
    config: FanOutConfig = FanOutConfig(),
    on_progress: Callable[[PartitionResult, FanOutSummary], None] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> FanOutSummary:
    """Featurize ``items`` on the client's cluster and commit every partition into ``writer``'s store."""
    from distributed import wait

    started = time.perf_counter()
    summary = FanOutSummary()
    known_on_workers = client.scatter(known, broadcast=True, hash=False)
    read_ahead = _ReadAhead(items, config.partition_size, max(2, len(client.nthreads())), known)
    pending: dict = {}  # future -> (partition, items, attempt)

    def submit(partition: int, batch: list[Item], attempt: int) -> None:
        future = client.submit(
            featurize_partition, partition, batch, writer.path, config.meter, config.timeout, known_on_workers,
            key=f"featurize-partition-{partition}-{attempt}-{os.urandom(4).hex()}", pure=False,
        )
        pending[future] = (partition, batch, attempt)

    def fill() -> None:
        """Top up the partitions in flight from what the read-ahead has ready (waiting only when idle)."""
        summary.workers = sum(client.nthreads().values())  # an adaptive cluster may grow or shrink
        while len(pending) < max(1, summary.workers) * config.in_flight_per_worker:
            batch, skipped = read_ahead.next(block=not pending)
            summary.files += skipped
            summary.skipped += skipped
            if batch is None:
                return
            submit(summary.partitions, batch, 1)
            summary.partitions += 1

    def finish(future) -> None:
        """Commit a finished partition, or resubmit it after a transient error."""
        partition, batch, attempt = pending.pop(future)
        try:
            result: PartitionResult = future.result()
        except Exception as error:
            if not is_transient(error) or attempt >= config.max_attempts:
                raise PartitionFailed(
                    f"partition {partition} ({len(batch)} files from {source_of(batch[0])}) failed after "
                    f"{attempt} attempt(s): {type(error).__name__}: {error}. Committed partitions are kept; "
                    "run again to resume."
                ) from error
            log(f"partition {partition}: {type(error).__name__}: {error}; resubmitting (attempt {attempt + 1})")
            summary.resubmitted += 1
            submit(partition, batch, attempt + 1)
            return
        finally:
            future.release()
        commit = writer.commit(result.songs, result.failures)
        summary.add(result, commit)
        summary.seconds = time.perf_counter() - started
        if on_progress:
            on_progress(result, summary)

    try:
        while True:
            fill()
            if not pending:  # the corpus is exhausted and every partition committed
                break
            try:  # wake up at least twice a second, so that partitions read meanwhile are submitted
                done = wait(list(pending), timeout=0.5, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                continue
            for future in done:
                finish(future)
    finally:
        read_ahead.close()
        if pending:
            client.cancel(list(pending), force=True)
    summary.seconds = time.perf_counter() - started
    return summary
