"""featurize-corpus: a MIDI corpus in, a featurized bat store out, at Lakh scale and however the run ends.

First we find the corpus: a folder tree, a glob, a manifest, fsspec URLs, or a ``.tar.gz`` that is streamed
without unpacking. Then we open the store as its single committer, clear the parts a killed run left behind,
and note which content it already holds. Next we fan partitions of files out to Dask workers (a local
cluster sized to this machine, or the cluster at ``dask_address``): each worker featurizes its files in an
isolated child process and writes one store part, and this process commits each part as it arrives. Last,
we publish a summary as a Prefect artifact and return it.

Nothing is lost however the run ends: each commit is atomic, content already in the store is skipped by hash,
so running the flow again with the same parameters finishes the job. Bad files are recorded by category and
never retried; only transient I/O is. Prefect sees a handful of tasks, not one per file.

    bat featurize data/corpus --store data/store.zarr       # this flow in-process, with a progress bar
    bat serve                                               # or serve it, then trigger runs by name:
    prefect deployment run featurize-corpus/default -p corpus=lmd_full.tar.gz -p store=data/lmd.zarr
"""

from __future__ import annotations

from bat.settings import configure_prefect_env

configure_prefect_env()  # before prefect is imported: project-local PREFECT_HOME

import fcntl  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from bat.ingest.sources import Corpus, open_corpus  # noqa: E402
from bat.run.dask_runner import FanOutConfig, FanOutSummary, dask_client, fan_out  # noqa: E402
from bat.run.isolation import KnownHashes  # noqa: E402
from bat.settings import get_settings  # noqa: E402
from bat.store.layout import ATTRS_KEY  # noqa: E402
from bat.store.reader import StoreError  # noqa: E402
from bat.store.writer import StoreWriter  # noqa: E402

LOG_EVERY = 15.0  # seconds between progress lines in the run's log
WRITER_LOCK = ".bat-writer.lock"  # the file StoreWriter locks while a run writes the store


def retry_on_io_error(task, task_run, state) -> bool:
    """Retry a task only when it failed on I/O (a network filesystem hiccup), never on a bad input."""
    try:
        state.result()
    except (OSError, TimeoutError):
        return True
    except Exception:
        return False
    return False


@task(retries=2, retry_delay_seconds=10, retry_condition_fn=retry_on_io_error)
def find_corpus(corpus: str | list[str], limit: int | None) -> Corpus:
    """List the corpus's files (archives are streamed later, member by member)."""
    found = open_corpus(corpus, limit=limit)
    get_run_logger().info("corpus: %s", found.describe())
    return found


@task(cache_policy=NO_CACHE)
def start_over(store: str) -> None:
    """Delete the store so that every file is featurized again (force=True); refuses anything but a bat store."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(store)
    if not fs.exists(root):
        return
    meta = f"{root.rstrip('/')}/zarr.json"
    is_bat_store = fs.exists(meta) and ATTRS_KEY in json.loads(fs.cat(meta)).get("attributes", {})
    if not is_bat_store and any(not p.rstrip("/").endswith(WRITER_LOCK) for p in fs.ls(root, detail=False)):
        raise StoreError(f"{store}: not a bat store, refusing to delete it; pick another --store")
    if "://" in store:
        fs.rm(root, recursive=True)
    else:  # hold the writer's lock (see StoreWriter._lock) so that no run is writing meanwhile
        with open(Path(root) / WRITER_LOCK, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise StoreError(f"{store}: another bat run is writing to this store; wait for it to finish") from error
            for child in Path(root).iterdir():
                if child.name != WRITER_LOCK:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
    get_run_logger().warning("force: deleted the store at %s; featurizing everything again", store)


@task(cache_policy=NO_CACHE)
def resume_point(writer: StoreWriter) -> tuple[KnownHashes, int]:
    """Delete parts no commit points to (left by a killed run) and collect the content already done."""
    orphans = writer.vacuum()
    known = KnownHashes(writer.known_hashes | writer.failed_hashes)
    get_run_logger().info(
        "store %s: %d songs and %d failures already recorded, %d orphan parts from an earlier run deleted",
        writer.path, len(writer.known_hashes), writer.attrs["n_failures"], orphans,
    )
    return known, orphans


@task(cache_policy=NO_CACHE)
def featurize_partitions(
    found: Corpus, writer: StoreWriter, known: KnownHashes, config: FanOutConfig, dask_address: str | None,
    workers: int | None, on_progress: Callable | None,
) -> FanOutSummary:
    """Featurize every partition on Dask workers and commit each one as it returns."""
    logger = get_run_logger()
    with dask_client(dask_address, workers) as client:
        logger.info("Dask: %s (dashboard %s)", client.scheduler.address, client.dashboard_link)
        progress = _Progress(found, logger, on_progress)
        summary = fan_out(client, found.items(), writer, known, config, on_progress=progress, log=logger.warning)
    update_progress_artifact(progress.artifact, progress=100.0)
    logger.info(
        "done: %s files in %s partitions: %s featurized, %s skipped, failed %s; %s beats; %.1f files/s, %.0f beats/s",
        f"{summary.files:,}", summary.partitions, f"{summary.featurized:,}", f"{summary.skipped:,}",
        dict(summary.failed) or "none", f"{summary.beats:,}", summary.files_per_second,
        summary.beats / summary.seconds if summary.seconds else 0.0,
    )
    return summary


@task
def publish_summary(report: dict) -> None:
    """Publish the run's counts as a markdown artifact."""
    create_markdown_artifact(markdown=_markdown(report), key="featurize-corpus-summary",
                             description=f"featurize-corpus into {report['store']}")


@flow(name="featurize-corpus")
def featurize_corpus(
    corpus: str | list[str],
    store: str | None = None,
    partition_size: int = 256,
    dask_address: str | None = None,
    workers: int | None = None,
    meter: str | None = None,
    limit: int | None = None,
    timeout: float = 60.0,
    force: bool = False,
    on_progress: Callable | None = None,
) -> dict:
    """Featurize a MIDI corpus into a bat store; a rerun skips what is done and finishes the job.

    Args:
        corpus: A folder tree, glob, manifest (manifest.csv or a list of paths), a .tar.gz archive such as
            lmd_full.tar.gz, local or an fsspec URL; or a list of these.
        store: The Zarr store to write (default: BAT_STORE_PATH or data/store.zarr).
        partition_size: Files per partition: one Dask task and one store part each.
        dask_address: Scheduler of an existing Dask cluster (default: DASK_SCHEDULER_ADDRESS, else a local
            cluster of one worker process per core).
        workers: Worker processes of the local cluster (default: one per core).
        meter: Keep only songs in this meter, e.g. 4/4; others are recorded as meter failures.
        limit: Featurize at most this many files.
        timeout: Seconds per file before it is recorded as a timeout.
        force: Start over: delete the store and featurize every file again (e.g. after a feature change).
        on_progress: In-process runs only: called with (summary, total files or None) after each commit.
    """
    store = store or get_settings().store
    found = find_corpus(corpus, limit)
    if force:
        start_over(store)
    config = FanOutConfig(partition_size=partition_size, meter=meter, timeout=timeout)
    with StoreWriter(store) as writer:
        known, orphans = resume_point(writer)
        summary = featurize_partitions(found, writer, known, config, dask_address, workers, on_progress)
    report = {"store": store, "corpus": found.describe(), **summary.as_dict(), "orphan_parts_deleted": orphans}
    publish_summary(report)
    return report


class _Progress:
    """After each commit: tell the caller, and every LOG_EVERY seconds log a line and move the progress bar."""

    def __init__(self, found: Corpus, logger, on_progress: Callable | None):
        self.found, self.logger, self.on_progress = found, logger, on_progress
        self.last_log = time.monotonic()
        self.artifact = create_progress_artifact(progress=0.0, key="featurize-corpus-progress",
                                                 description="share of the corpus featurized")

    def __call__(self, result, summary: FanOutSummary) -> None:
        total = self.found.total
        if self.on_progress:
            self.on_progress(summary, total)
        if time.monotonic() - self.last_log < LOG_EVERY:
            return
        self.last_log = time.monotonic()
        fraction = summary.files / total if total else self.found.fraction_read
        done = f"{summary.files:,} of {total:,} files" if total else f"{summary.files:,} files"
        left = ""
        if fraction and summary.files_per_second:
            left = f", about {_duration(summary.seconds * (1 - fraction) / fraction)} left"
        self.logger.info(
            "%s (%s): %s featurized, %s skipped, %s failed; %.1f files/s, %.0f beats/s%s",
            done, f"{100 * fraction:.1f}%" if fraction is not None else "?", f"{summary.featurized:,}",
            f"{summary.skipped:,}", f"{sum(summary.failed.values()):,}", summary.files_per_second,
            summary.beats / summary.seconds if summary.seconds else 0.0, left,
        )
        if fraction is not None and self.artifact:
            update_progress_artifact(self.artifact, progress=100 * fraction)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _markdown(report: dict) -> str:
    rows = [
        ("files seen", f"{report['files']:,}"),
        ("featurized", f"{report['featurized']:,}"),
        ("skipped (already in the store)", f"{report['skipped']:,}"),
        ("failed", f"{sum(report['failed'].values()):,}"),
        ("beats written", f"{report['beats']:,}"),
        ("wall time", _duration(report["seconds"])),
        ("files/s", f"{report['files_per_second']:,}"),
        ("beats/s", f"{report['beats_per_second']:,}"),
        ("partitions (resubmitted)", f"{report['partitions']:,} ({report['resubmitted']})"),
        ("Dask worker threads", f"{report['workers']}"),
        ("orphan parts deleted", f"{report['orphan_parts_deleted']}"),
    ]
    lines = [f"# featurize-corpus: {report['corpus']}", "", f"Store: `{report['store']}`", "",
             "| | |", "|---|---:|", *(f"| {k} | {v} |" for k, v in rows)]
    if report["failed"]:
        lines += ["", "## Failures by category", "", "| category | files |", "|---|---:|"]
        lines += [f"| {k} | {v:,} |" for k, v in sorted(report["failed"].items(), key=lambda kv: -kv[1])]
        lines += ["", f"Each failed file, with its reason: `bat store failures {report['store']}`"]
    return "\n".join(lines) + "\n"
