"""Kill -9 the featurize-corpus flow mid-run, run it again: the job finishes and every song is there once.

The flow runs as a user starts it (``bat featurize`` in a subprocess, reporting to a real Prefect server).
Once some partitions are committed, the whole process group is killed with SIGKILL (the flow process, its
Dask scheduler, nannies, workers and featurizing children: what a crash or the OOM killer does). The second
run must clear the half-written parts, skip what was committed and featurize the rest.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.flows.helpers import BIN, kill_group, make_corpus, started, wait_for

pytestmark = pytest.mark.slow


def _committed_songs(store: Path) -> int:
    """Songs committed so far, read the way a reader would (the root metadata is replaced atomically)."""
    meta = store / "zarr.json"
    if not meta.exists():
        return 0
    return json.loads(meta.read_text())["attributes"].get("bat", {}).get("n_songs", 0)


def _parts(store: Path) -> set[str]:
    return {p.name for p in (store / "parts").iterdir() if (p / "zarr.json").exists()}


def test_kill_9_mid_run_then_rerun_writes_each_song_exactly_once(prefect_server, tmp_path):
    from bat.store.reader import open_store

    corpus = make_corpus(tmp_path / "corpus", 300, 0.05, seed=7)
    store = tmp_path / "store.zarr"
    command = [str(BIN / "bat"), "featurize", str(corpus.root), "--store", str(store), "--workers", "2",
               "--partition-size", "10", "--json"]
    log = tmp_path / "first-run.log"
    with started(command, prefect_server.env(), log) as first:
        wait_for(lambda: _committed_songs(store) >= 30 or first.poll() is not None, 240, "30 committed songs",
                 interval=0.1)
        os.killpg(first.pid, signal.SIGKILL)
        kill_group(first)
    assert first.returncode == -signal.SIGKILL, f"the run ended before it was killed:\n{log.read_text()[-2000:]}"
    done_before = _committed_songs(store)
    assert 30 <= done_before < len(corpus.good)
    orphans = _parts(store) - set(open_store(str(store)).songs["part"])  # written, never committed

    out = tmp_path / "second-run.log"
    with started(command, prefect_server.env(), out) as second:
        wait_for(lambda: second.poll() is not None, 300, "the second run to finish")
    assert second.returncode == 0, out.read_text()[-3000:]
    summary = json.loads(out.read_text().strip().splitlines()[-1])
    assert summary["featurized"] == len(corpus.good) - done_before
    assert summary["files"] == len(corpus.files)
    assert summary["orphan_parts_deleted"] == len(orphans)

    result = open_store(str(store))
    hashes = list(result.songs["content_hash"])
    assert sorted(hashes) == sorted(corpus.good), "every good file's content exactly once"
    for i in range(len(result)):
        assert result.song_arrays(i).features.shape[0] == result.songs["n_beats"][i] > 0
    # each bad content once, under its category (two 0-byte files share one content: the second is skipped)
    recorded = list(zip(result.failures["content_hash"], result.failures["category"]))
    expected = {(f.content_hash, f.expected) for f in corpus.files if f.expected != "ok"}
    assert sorted(recorded) == sorted(expected)
    assert {str(Path(s).relative_to(corpus.root)) for s in result.failures["source"]} <= set(corpus.bad)
    assert _parts(store) == set(result.songs["part"]), "the killed run's uncommitted parts were deleted"


def test_a_worker_killed_mid_partition_loses_nothing(tmp_path):
    """SIGKILL a Dask worker while it featurizes: its partition is redone elsewhere, nothing is lost or doubled."""
    from distributed import Client, LocalCluster

    from bat.run.dask_runner import FanOutConfig, fan_out
    from bat.run.isolation import KnownHashes
    from bat.store.reader import open_store
    from bat.store.writer import StoreWriter

    corpus = make_corpus(tmp_path / "corpus", 60, 0.0, seed=11)
    store = str(tmp_path / "store.zarr")
    items = sorted(str(p) for p in corpus.root.rglob("*.mid"))
    killed = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client, StoreWriter(store) as writer:
        pids = client.run(os.getpid)

        def kill_a_busy_worker(result, summary) -> None:
            """At the first partition committed while another is running. The driver may commit several at once
            (all it had in flight finished together, on a loaded machine): then none runs until it submits more,
            and the next commit tries again."""
            if killed:
                return
            busy = [address for address, keys in client.processing().items() if keys]
            if not busy:
                return
            time.sleep(0.3)  # into its partition: the featurizing child is running
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

        summary = fan_out(client, items, writer, KnownHashes(), FanOutConfig(partition_size=4),
                          on_progress=kill_a_busy_worker)
    assert killed and summary.files == len(items)
    result = open_store(store)
    assert sorted(result.songs["content_hash"]) == sorted(corpus.good)
    assert sorted(result.failures["content_hash"]) == sorted(f.content_hash for f in corpus.files if f.expected != "ok")
