"""``bat corpus music21`` on real music21 scores: true bar lines, written form, exact ticks, resumable runs.

Most tests read the session's ``demo_corpus`` (conftest.py); the few that need a failure or a damaged corpus
convert one or two pieces (or a copy) into ``tmp_path``.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import time
from collections import Counter
from fractions import Fraction

import mido
import pretty_midi
import pytest
from typer.testing import CliRunner

from bat.cli.corpus import app
from bat.corpus.demo import demo_pieces
from bat.corpus.manifest import COLUMNS, manifest_midi_paths, read_manifest
from bat.corpus.music21_corpus import ConvertConfig, Piece, convert_piece, convert_pieces, list_pieces, load_score
from bat.corpus.score_midi import Bar, score_to_midi

CHORALE = "bach/bwv269.mxl"  # Riemenschneider 1: 3/4, one-beat pickup, an end repeat at bar 7, 24 bars
METER_CHANGE = "oneills1850/0051-0100.abc#89"  # 3/4 and 3/8 alternate
ESSEN_6_8 = "essenFolksong/boehme20.abc#16"  # a 6/8 tune of the test subset


def _row(manifest, source):
    table = read_manifest(manifest)
    rows = table[table["source"] == source]
    assert len(rows) == 1, f"{source} is not in {manifest}"
    return rows.iloc[0]


@functools.cache
def _pieces():
    return {p.source: p for p in list_pieces()}


def _piece(source):
    return _pieces()[source]


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _note_onsets(path):
    """(tick, MIDI pitch) of every note-on of the file."""
    onsets, midi = Counter(), mido.MidiFile(path)
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                onsets[(tick, msg.note)] += 1
    return onsets, midi.ticks_per_beat


# ---------------------------------------------------------------------------------------------------------
# The manifest


def test_manifest_has_the_schema_and_every_piece(demo_corpus):
    table = read_manifest(demo_corpus)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == len(demo_pieces("test")) >= 30
    assert (table["status"] == "ok").all(), table.loc[table["status"] != "ok", ["source", "reason"]]
    assert (table["reason"] == "").all()
    assert {"bach", "essenFolksong", "oneills1850", "ryansMammoth", "palestrina"} <= set(table["collection"])
    assert {"2/4", "3/4", "4/4", "6/8", "3/8", "4/2"} <= set(table["time_signature"])
    paths = manifest_midi_paths(demo_corpus)
    assert len(paths) == len(table) and all(p.is_absolute() and p.exists() for p in paths)


def test_known_fields_of_a_chorale(demo_corpus):
    row = _row(demo_corpus, CHORALE)
    assert (row.path, row.collection, row.composer) == ("bach/bwv269.mid", "bach", "J.S. Bach")
    assert (row.time_signature, row.key, row.n_parts, row.n_bars, row.pickup) == ("3/4", "G major", 4, 24, 1.0)
    assert (row.tempo_qpm, row.ticks_per_quarter, row.exact_timing) == (120.0, 480, True)
    assert row.analysis == "bach/choraleAnalyses/riemenschneider001.rntxt"


def test_content_hash_is_the_sha256_of_the_file(demo_corpus):
    table = read_manifest(demo_corpus)
    for row in table.itertuples():
        assert _sha256(demo_corpus.parent / row.path) == row.content_hash, row.path


# ---------------------------------------------------------------------------------------------------------
# The MIDI files: true bar lines, written form, exact ticks


def test_pickup_is_a_short_first_bar(demo_corpus):
    row = _row(demo_corpus, CHORALE)
    midi = pretty_midi.PrettyMIDI(str(demo_corpus.parent / row.path))
    quarter = 60 / row.tempo_qpm
    downbeats = midi.get_downbeats()
    assert downbeats[0] == 0
    assert downbeats[1] - downbeats[0] == pytest.approx(quarter)  # the pickup bar: 1/4
    assert downbeats[2] - downbeats[1] == pytest.approx(3 * quarter)  # then 3/4
    onsets = sorted({n.start for inst in midi.instruments for n in inst.notes})
    assert onsets[0] == 0 and onsets[1] == pytest.approx(downbeats[1])  # the pickup chord, then bar 1
    assert [(ts.numerator, ts.denominator) for ts in midi.time_signature_changes[:2]] == [(1, 4), (3, 4)]


def test_every_bar_of_every_score_is_a_bar_of_its_file(demo_corpus):
    table = read_manifest(demo_corpus)
    for row in table[table["n_bars"] > 0].itertuples():  # a tune without bar lines has no bars to check
        midi = pretty_midi.PrettyMIDI(str(demo_corpus.parent / row.path))
        downbeats = midi.get_downbeats()
        downbeats = downbeats[downbeats < midi.get_end_time() - 1e-6]  # pretty_midi's float error at the end
        assert len(downbeats) == row.n_bars, row.source
        assert midi.get_end_time() >= downbeats[-1], row.source
    assert table["exact_timing"].all()


def test_repeats_are_not_expanded(demo_corpus):
    from music21 import bar, stream

    score = load_score(_piece(CHORALE))
    assert any(isinstance(m.rightBarline, bar.Repeat) for m in score.parts[0].getElementsByClass(stream.Measure))
    measures = len(score.parts[0].getElementsByClass(stream.Measure))
    row = _row(demo_corpus, CHORALE)
    midi = pretty_midi.PrettyMIDI(str(demo_corpus.parent / row.path))
    assert len(midi.get_downbeats()) == measures == row.n_bars == 24
    assert midi.get_end_time() == pytest.approx(score.highestTime * 60 / row.tempo_qpm)


@pytest.mark.parametrize("source", [CHORALE, ESSEN_6_8, METER_CHANGE])
def test_every_onset_is_an_exact_tick(demo_corpus, source):
    onsets, tpq = _note_onsets(demo_corpus.parent / _row(demo_corpus, source).path)
    expected = Counter()  # one note-on where a note starts, none where a tie continues it
    for el in load_score(_piece(source)).flatten().notes:
        for n in el.notes if el.isChord else [el]:
            tie = n.tie or el.tie
            if tie is None or tie.type == "start":
                expected[(int(Fraction(el.offset) * tpq), n.pitch.midi)] += 1
    assert onsets == expected


def test_meter_changes_are_written(demo_corpus):
    midi = pretty_midi.PrettyMIDI(str(demo_corpus.parent / _row(demo_corpus, METER_CHANGE).path))
    assert {(3, 4), (3, 8)} <= {(ts.numerator, ts.denominator) for ts in midi.time_signature_changes}


@pytest.mark.parametrize(
    ("length", "meter", "written"),
    [(1, (4, 4), (1, 4)), (Fraction(3, 2), (3, 4), (3, 8)), (Fraction(1, 2), (6, 8), (1, 8)),
     (3, (6, 8), (6, 8)), (5, (4, 4), (5, 4)), (6, None, (6, 4)), (Fraction(1, 3), (4, 4), (4, 4)),
     (Fraction(2, 3), (1, 6), (4, 4))],  # music21 reads 1/6 from some ABC tuplets: not a MIDI denominator
)
def test_incomplete_bar_gets_its_own_time_signature(length, meter, written):
    assert Bar(Fraction(0), Fraction(length), meter).written == written  # 1/3 quarter: not writable, kept


@pytest.mark.parametrize(("tuplet", "tpq", "exact"), [(3, 480, True), (5, 480, True), (7, 3360, True),
                                                     (11, 10080, False)])
def test_resolution_is_the_coarsest_exact_one(tuplet, tpq, exact, tmp_path):
    from music21 import meter, note, stream

    measure = stream.Measure(number=1)
    measure.timeSignature = meter.TimeSignature("2/4")
    for i in range(tuplet):
        measure.append(note.Note(60 + i, quarterLength=Fraction(1, tuplet)))
    measure.append(note.Note(72, quarterLength=1))
    data, info = score_to_midi(stream.Score([stream.Part([measure])]))
    assert (info["ticks_per_quarter"], info["exact_timing"]) == (tpq, exact)
    (tmp_path / "tuplets.mid").write_bytes(data)
    onsets, file_tpq = _note_onsets(tmp_path / "tuplets.mid")
    assert file_tpq == tpq
    if exact:
        assert sorted(onsets) == [(i * tpq // tuplet, 60 + i) for i in range(tuplet)] + [(tpq, 72)]


# ---------------------------------------------------------------------------------------------------------
# Runs: idempotent, failures recorded, timeouts killed, killed runs resumed


def test_second_run_converts_nothing(demo_corpus):
    folder = demo_corpus.parent
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    summary = convert_pieces(demo_pieces("test"), folder)
    assert (summary.converted, summary.skipped, sum(summary.failed.values())) == (0, len(read_manifest(demo_corpus)), 0)
    assert summary.seconds < 5
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} == before


def test_failures_are_recorded_and_the_others_succeed(tmp_path):
    good = _piece("essenFolksong/altdeu10.abc#2")
    bogus = Piece("bach/no_such_chorale.mxl", "bach", "bach/no_such_chorale.mid")
    summary = convert_pieces([good, bogus], tmp_path, ConvertConfig(workers=2))
    assert summary.converted == 1 and summary.failed == {"FileNotFoundError": 1}
    row = _row(tmp_path / "manifest.csv", bogus.source)
    assert row.status == "failed" and row.reason.startswith("FileNotFoundError: bach/no_such_chorale.mxl")
    assert row.content_hash == "" and not (tmp_path / bogus.path).exists()
    assert _row(tmp_path / "manifest.csv", good.source).status == "ok"
    assert manifest_midi_paths(tmp_path / "manifest.csv") == [(tmp_path / good.path).resolve()]

    again = convert_pieces([good, bogus], tmp_path, ConvertConfig(workers=2))  # failures are not retried
    assert (again.converted, again.skipped, again.skipped_failed) == (0, 1, 1)


def test_a_file_over_the_size_limit_is_refused(tmp_path):
    row = convert_piece(_piece("essenFolksong/altdeu10.abc#2"), tmp_path, max_bytes=64)
    assert row["status"] == "failed" and row["reason"].startswith("TooLargeError")
    assert not any(tmp_path.rglob("*.mid"))


def test_timeout_kills_the_worker_and_retry_converts(tmp_path):
    piece = _piece("palestrina/Agnus_01.krn")  # about a second of work
    started = time.perf_counter()
    summary = convert_pieces([piece], tmp_path, ConvertConfig(workers=1, timeout_s=0.01))
    assert summary.failed == {"timeout": 1}
    assert time.perf_counter() - started < 15  # killed, not waited for (a worker starts in 1-3 s)
    assert _row(tmp_path / "manifest.csv", piece.source).reason == "timeout"
    assert not (tmp_path / piece.path).exists()

    retried = convert_pieces([piece], tmp_path, ConvertConfig(workers=1, retry_failed=True))
    assert retried.converted == 1 and _row(tmp_path / "manifest.csv", piece.source).status == "ok"


def test_a_killed_run_resumes(demo_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    table = read_manifest(corpus)
    victim = table[table["source"] == CHORALE].iloc[0]
    (corpus / victim.path).unlink()  # converted, but the manifest never recorded it... or the file was lost
    (corpus / "manifest.csv.tmp").write_text("path,collection\nbach/")  # a manifest rewrite cut short
    stale = corpus / "bach" / "bwv1.6.mid.4242.tmp"  # a MIDI write cut short
    stale.write_bytes(b"MThd")

    summary = convert_pieces(demo_pieces("test"), corpus, ConvertConfig(workers=1))
    assert (summary.converted, summary.skipped) == (1, len(table) - 1)
    assert not stale.exists() and not (corpus / "manifest.csv.tmp").exists()
    assert _sha256(corpus / victim.path) == victim.content_hash  # the conversion is deterministic
    assert read_manifest(corpus)[["path", "content_hash"]].equals(table[["path", "content_hash"]])


# ---------------------------------------------------------------------------------------------------------
# The command line


def test_cli_converts_reports_and_resumes(tmp_path):
    runner = CliRunner()
    args = ["music21", "--out", str(tmp_path), "--collections", "ryansMammoth", "--limit", "2", "--workers", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "converted 2, skipped (already done) 0, failed 0" in first.output
    second = runner.invoke(app, args)
    assert "converted 0, skipped (already done) 2, failed 0" in second.output
    assert len(manifest_midi_paths(tmp_path)) == 2

    wrong = runner.invoke(app, ["music21", "--out", str(tmp_path), "--collections", "bachh"])
    assert wrong.exit_code != 0 and "unknown music21 collections ['bachh']" in wrong.output
    for command in ("music21", "demo"):
        assert runner.invoke(app, [command, "--help"]).exit_code == 0
