"""What the featurize-corpus flow accepts as a corpus, without Prefect or Dask: archives, URLs, limits."""

from __future__ import annotations

import hashlib
import tarfile

import pytest

from bat.ingest.archive import ArchiveReader, member_source
from bat.ingest.sources import open_corpus
from bat.run.isolation import featurize_isolated
from tests.synthetic_corpus import CorpusSpec, file_bytes, write_corpus, write_tar_gz


def test_synthetic_corpus_is_reproducible_distinct_and_multitrack(tmp_path):
    spec = CorpusSpec(files=40, corrupt_share=0.2, min_bars=4, max_bars=8, seed=3)
    assert [file_bytes(spec, i) for i in range(5)] == [file_bytes(spec, i) for i in range(5)]
    files = write_corpus(tmp_path, spec)
    songs = [f for f in files if f.kind == "song"]
    assert len({f.content_hash for f in songs}) == len(songs) > 20
    assert {f.kind for f in files} - {"song"}, "some corrupt files"
    import symusic

    score = symusic.Score.from_midi((tmp_path / songs[0].path).read_bytes())
    assert len(score.tracks) >= 4 and any(t.is_drum for t in score.tracks)


def test_archive_members_stream_in_order_with_their_archive_in_the_name(tmp_path):
    files = write_corpus(tmp_path / "corpus", CorpusSpec(files=12, corrupt_share=0.0, min_bars=4, max_bars=6))
    archive = write_tar_gz(tmp_path / "corpus", files, tmp_path / "lmd_full.tar.gz")
    reader = ArchiveReader(archive)
    members = list(reader)
    assert [name for name, _ in members] == [member_source(archive, f"lmd_full/{f.path}") for f in files]
    assert [hashlib.sha256(data).hexdigest() for _, data in members] == [f.content_hash for f in files]
    assert reader.fraction_read == pytest.approx(1.0, abs=0.05)  # the README member is skipped, not counted

    corpus = open_corpus([archive, str(tmp_path / "corpus" / files[0].path)], limit=5)
    items = list(corpus.items())
    assert len(items) == 5 and isinstance(items[0], str) and isinstance(items[1], tuple)
    assert corpus.total is None  # archive members are only counted as they stream


def test_archive_members_featurize_like_files_and_oversized_ones_are_capped(tmp_path):
    files = write_corpus(tmp_path / "corpus", CorpusSpec(files=3, corrupt_share=0.0, min_bars=4, max_bars=6))
    archive = tmp_path / "odd.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "corpus" / files[0].path, arcname="a.mid")
        big = tmp_path / "big.mid"
        big.write_bytes(b"MThd" + bytes(5000))
        tar.add(big, arcname="big.mid")
    members = list(ArchiveReader(str(archive), max_bytes=1000))
    assert len(members[1][1]) == 1001  # read only up to the limit, enough to record it as too large
    outcomes = list(featurize_isolated([members[0], str(tmp_path / "corpus" / files[0].path)]))
    assert [o.status for o in outcomes] == ["ok", "ok"]
    assert outcomes[0].content_hash == outcomes[1].content_hash == files[0].content_hash
    assert outcomes[0].source == f"{archive}::a.mid"


def test_missing_inputs_say_what_was_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such archive"):
        open_corpus(str(tmp_path / "lmd_full.tar.gz"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        open_corpus(str(tmp_path / "nowhere"))
