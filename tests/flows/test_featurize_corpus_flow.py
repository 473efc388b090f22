"""The featurize-corpus flow, in-process, on real MIDI files and a real LocalCluster of worker processes.

What a user relies on: corrupt files end up in the failures table under their category while the rest is
featurized; a rerun does nothing twice (content hashes); a .tar.gz corpus is read without unpacking and
gives the same songs; ``force`` starts the store over; the run publishes its summary as an artifact.
"""

from __future__ import annotations

import pytest

from tests.synthetic_corpus import write_tar_gz

pytestmark = pytest.mark.slow


def _check_store(store_path: str, corpus, source_of=lambda source: source) -> None:
    """Every good file exactly once with readable beats; every bad one in failures with its category."""
    from bat.store.reader import open_store

    store = open_store(store_path)
    hashes = list(store.songs["content_hash"])
    assert sorted(hashes) == sorted(corpus.good), "each good file's content exactly once"
    for i in range(len(store)):
        arrays = store.song_arrays(i)
        assert arrays.features.shape == (store.songs["n_beats"][i], len(store.feature_names))
        assert arrays.beat_times.shape[0] == store.songs["n_beats"][i] > 0
    recorded = {source_of(s).split(str(corpus.root) + "/", 1)[-1]: c
                for s, c in zip(store.failures["source"], store.failures["category"])}
    assert recorded == corpus.bad


def test_flow_records_corrupt_files_by_category_and_rerun_skips_everything(prefect_api, small_corpus, tmp_path):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.featurize_corpus import featurize_corpus

    store = str(tmp_path / "store.zarr")
    seen = []
    first = featurize_corpus(corpus=str(small_corpus.root), store=store, partition_size=8, workers=2,
                             on_progress=lambda summary, total: seen.append((summary.files, total)))
    n_files, n_bad = len(small_corpus.files), len(small_corpus.bad)
    assert first["files"] == n_files and first["featurized"] == n_files - n_bad
    assert sum(first["failed"].values()) == n_bad and set(first["failed"]) == {"parse", "empty"}
    assert first["beats"] > 0 and first["partitions"] == -(-n_files // 8)
    assert seen[-1] == (n_files, n_files) and len(seen) == first["partitions"]
    _check_store(store, small_corpus)

    again = featurize_corpus(corpus=str(small_corpus.root), store=store, partition_size=8, workers=2)
    assert again["files"] == n_files and again["skipped"] == n_files
    assert again["featurized"] == 0 and again["failed"] == {} and again["beats"] == 0
    _check_store(store, small_corpus)  # nothing recorded twice

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["featurize-corpus-summary"])))
    assert any("| featurized | 0 |" in a.data for a in artifacts)
    assert any(f"| featurized | {n_files - n_bad} |" in a.data and "| parse |" in a.data for a in artifacts)


def test_tar_gz_corpus_is_streamed_and_force_starts_over(prefect_api, small_corpus, tmp_path):
    from bat.store.reader import open_store
    from flows.featurize_corpus import featurize_corpus

    archive = write_tar_gz(small_corpus.root, small_corpus.files, tmp_path / "lmd_full.tar.gz")
    store = str(tmp_path / "store.zarr")
    first = featurize_corpus(corpus=archive, store=store, partition_size=8, workers=2)
    assert first["files"] == len(small_corpus.files) and first["featurized"] == len(small_corpus.good)
    member = lambda source: source.split("::lmd_full/", 1)[1]  # noqa: E731 - "<archive>::lmd_full/<path>"
    _check_store(store, small_corpus, source_of=member)
    assert all(s.startswith(f"{archive}::lmd_full/") for s in open_store(store).songs["source"])

    again = featurize_corpus(corpus=archive, store=store, partition_size=8, workers=2)
    assert again["skipped"] == len(small_corpus.files) and again["partitions"] == 0  # skipped in the driver

    over = featurize_corpus(corpus=archive, store=store, partition_size=8, workers=2, force=True)
    assert over["featurized"] == len(small_corpus.good) and over["skipped"] == 0
    _check_store(store, small_corpus, source_of=member)
