"""Featurize a synthetic Lakh-like corpus with the featurize-corpus flow, and show that it scales.

    .venv/bin/python bench/corpus_scale.py                  # 20,000 files (~10 min to generate on 2 cores)
    .venv/bin/python bench/corpus_scale.py --files 2000     # a few minutes on 2 cores

It writes N distinct multitrack MIDI files (tests/synthetic_corpus.py: drums, bass, chords, melody, varied
tempo and meter, 2% corrupt), then runs the flow twice, each in a fresh process with a fresh store and a Dask
LocalCluster of one worker process per core: on the first N/4 files, then on all N. Per run it prints files/s
and beats/s, the peak memory (RSS) of the driver (the flow process, which also hosts the Dask scheduler), of
each Dask worker and of the featurizing children (sampled), and the store's size per 1,000 songs. Memory is flat when
the N run's peaks match the N/4 run's. Last, the projected wall time of Lakh (176,581 files) on 16 cores,
from the per-core rate measured here (featurizing is embarrassingly parallel; the one committer does a few
small writes per partition).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAKH_FILES = 176_581


class _Sampler:
    """On a Dask worker: samples the RSS of the worker and of its featurizing children every 0.1 s.

    A child's own ru_maxrss can't be used: Linux carries the worker's peak into it across fork+exec.
    """

    def __init__(self):
        import threading

        import psutil

        self.process, self.worker, self.child, self.stop = psutil.Process(), 0, 0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        import psutil

        while not self.stop.wait(0.1):
            self.worker = max(self.worker, self.process.memory_info().rss)
            for child in self.process.children(recursive=True):
                try:
                    self.child = max(self.child, child.memory_info().rss)
                except psutil.Error:
                    pass


def _start_sampler(dask_worker) -> None:
    dask_worker.bat_sampler = _Sampler()


def _read_sampler(dask_worker) -> dict:
    sampler = dask_worker.bat_sampler
    sampler.stop.set()
    return {"worker": sampler.worker / 2**20, "child": sampler.child / 2**20}


def _store_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def measure(corpus: str, store: str, files: int, workers: int, partition_size: int) -> dict:
    """One flow run in this process on the first ``files`` files; returns its figures."""
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
    from distributed import Client, LocalCluster

    from flows.featurize_corpus import featurize_corpus

    started = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            client.run(_start_sampler)
            report = featurize_corpus(corpus=corpus, store=store, limit=files, partition_size=partition_size,
                                      dask_address=cluster.scheduler_address)
            peaks = list(client.run(_read_sampler).values())
    from bat.store.reader import open_store

    songs = len(open_store(store))
    return {
        **report, "wall_seconds": round(time.perf_counter() - started, 1),
        "driver_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_mb": round(max(p["worker"] for p in peaks), 1),
        "child_peak_mb": round(max(p["child"] for p in peaks), 1),
        "store_mb_per_1k_songs": round(_store_mb(Path(store)) / songs * 1000, 2) if songs else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--partition-size", type=int, default=256)
    parser.add_argument("--out", default=str(REPO / "data" / "bench-corpus-scale"))
    parser.add_argument("--measure", nargs=2, metavar=("CORPUS", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child process of one run
        print(json.dumps(measure(*args.measure, args.files, args.workers, args.partition_size)))
        return

    sys.path.insert(0, str(REPO))
    from tests.synthetic_corpus import CorpusSpec, write_corpus

    out = Path(args.out)
    corpus = out / f"corpus-{args.files}"
    if not (corpus / ".complete").exists():
        began = time.perf_counter()
        files = write_corpus(corpus, CorpusSpec(files=args.files), processes=args.workers)
        (corpus / ".complete").write_text(str(len(files)))
        print(f"wrote {len(files):,} files to {corpus} in {time.perf_counter() - began:.0f} s")
    env = {**os.environ, "PREFECT_HOME": str(out / "prefect-home")}
    env.pop("PREFECT_API_URL", None)  # the embedded API: a bench measures bat, not a shared server
    runs = []
    for n in (max(1, args.files // 4), args.files):
        store = out / f"store-{n}.zarr"
        subprocess.run(["rm", "-rf", str(store)], check=True)
        command = [sys.executable, __file__, "--measure", str(corpus), str(store), "--files", str(n),
                   "--workers", str(args.workers), "--partition-size", str(args.partition_size)]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode:
            sys.exit(f"the run on {n} files failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))

    print(f"\nfeaturize-corpus on synthetic Lakh-like MIDI, {args.workers} worker processes "
          f"(partition size {args.partition_size})")
    header = ("files", "featurized", "failed", "beats", "s", "files/s", "beats/s", "driver MB", "worker MB",
              "child MB", "store MB/1k songs")
    print(" | ".join(header))
    for r in runs:
        print(" | ".join(str(v) for v in (
            r["files"], r["featurized"], sum(r["failed"].values()), r["beats"], r["seconds"], r["files_per_second"],
            r["beats_per_second"], r["driver_peak_mb"], r["worker_peak_mb"], r["child_peak_mb"],
            r["store_mb_per_1k_songs"])))
    small, large = runs
    peaks = ("driver_peak_mb", "worker_peak_mb", "child_peak_mb")
    growth = {k: large[k] / small[k] if small[k] else 0.0 for k in peaks}
    print(f"memory growth from {small['files']:,} to {large['files']:,} files: "
          + ", ".join(f"{k.replace('_peak_mb', '')} x{v:.2f}" for k, v in growth.items()))
    per_core = large["files_per_second"] / args.workers
    projected = LAKH_FILES / (per_core * 16) if per_core else float("inf")
    print(f"per core: {per_core:.1f} files/s -> Lakh ({LAKH_FILES:,} files) on 16 cores: about "
          f"{projected / 60:.0f} min of featurizing, "
          f"{LAKH_FILES / 1000 * large['store_mb_per_1k_songs'] / 1000:.1f} GB of store")


if __name__ == "__main__":
    main()
