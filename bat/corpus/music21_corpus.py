"""Convert the corpus bundled with music21 into one MIDI file per piece plus ``manifest.csv``.

    bat corpus music21 --out data/music21                                  # everything, all cores
    bat corpus music21 --out data/music21 --collections bach,essenFolksong --limit 100 --workers 2

Why not just ``score.write('midi')``: music21 would expand repeats (the labels of later stages are per written
measure), put a pickup on a false downbeat, and write 10,080 ticks per quarter. Here each piece keeps its
written form, every bar of the score is a bar of the file (a pickup or an incomplete bar gets a time signature
of its own length, the real meter comes back at the next full bar), and the resolution is 480 ticks per quarter
unless a tuplet needs a finer one. Pieces are converted in worker processes under a per-piece timeout that
kills the worker; the manifest is rewritten atomically every few pieces, so a killed run resumes where it
stopped and a finished run is a no-op.
"""

from __future__ import annotations

import copy
import hashlib
import io
import math
import multiprocessing as mp
import os
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing.connection import wait
from pathlib import Path

from bat.corpus.manifest import (
    MANIFEST_NAME,
    STATUS_FAILED,
    STATUS_OK,
    load_rows,
    split_source,
    write_manifest,
)

# Same piece in two formats (beethoven/opus18no1 has .krn and .mxl): keep the first in this order.
CORPUS_EXTENSIONS = (".mxl", ".musicxml", ".xml", ".krn", ".abc")
# music21's own test files (layout, chord-symbol and tuplet tests), not repertoire; convert them by naming them.
EXCLUDED_BY_DEFAULT = ("demos", "theoryExercises")
# Collections whose ABC files hold one voice per X: tune: the tunes of a file are the parts of one piece.
MERGED_OPUS_COLLECTIONS = ("josquin",)
BASE_TICKS_PER_QUARTER = 480  # 2^5 * 3 * 5: exact for 128ths, triplets and quintuplets
MAX_TICKS_PER_QUARTER = 10080  # music21's own resolution: adds septuplets and nested triplets
_MAX_DENOMINATOR = 64  # finest denominator tried for the time signature of an incomplete bar


@dataclass(frozen=True)
class Piece:
    """One score to convert: ``source`` says where it is in the music21 corpus, ``path`` where its MIDI goes."""

    source: str  # "bach/bwv269.mxl", "essenFolksong/ballad10.abc#12" (ABC reference number X:12)
    collection: str
    path: str  # relative to the output folder
    analysis: str = ""  # corpus path of a bundled Roman-numeral analysis of this piece


@dataclass
class ConvertConfig:
    """Knobs of a conversion run."""

    workers: int | None = None  # worker processes; None: os.cpu_count()
    timeout_s: float = 60.0  # per piece; the worker converting it is killed past this (one O'Neill tune ran 257 s)
    max_bytes: int = 5_000_000  # refuse to write a bigger MIDI: a pathological piece, not music
    retry_failed: bool = False  # failed pieces are deterministic failures: retry only when asked
    flush_every: int = 32  # rows between manifest rewrites: a killed run loses at most this many conversions


@dataclass
class Summary:
    """What a run did; ``format()`` is the CLI's report."""

    converted: int = 0
    skipped: int = 0  # already ok in the manifest (or failed, without --retry-failed)
    failed: Counter = field(default_factory=Counter)  # reason head ("timeout", "ParseError"...) -> count
    seconds: float = 0.0
    manifest: Path | None = None

    def format(self) -> str:
        lines = [
            f"converted {self.converted}, skipped (already done) {self.skipped}, "
            f"failed {sum(self.failed.values())} in {self.seconds:.1f} s",
        ]
        lines += [f"  failed: {reason}: {n}" for reason, n in self.failed.most_common()]
        if self.manifest is not None:
            lines.append(f"manifest: {self.manifest}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Which pieces exist


def corpus_root() -> Path:
    """The folder of the corpus bundled with the installed music21 (no download, ever)."""
    from music21 import common

    return Path(common.getCorpusFilePath())


def available_collections() -> list[str]:
    """Top-level folders of the bundled corpus that hold scores."""
    return sorted({p.relative_to(corpus_root()).parts[0] for p in _score_files()})


def list_pieces(collections: Sequence[str] | None = None) -> list[Piece]:
    """Every piece of the bundled corpus (or of ``collections``) in a stable order.

    An ABC file with several X: tunes is an opus: each tune is a piece, named by its reference number, read
    without parsing the rest of the file. Roman-numeral analyses (.rntxt) are labels, not scores: they are
    not converted but linked from the ``analysis`` column of the piece they analyse.
    """
    root = corpus_root()
    files = _score_files()
    known = {p.relative_to(root).parts[0] for p in files}
    if collections:
        unknown = sorted(set(collections) - known)
        if unknown:
            raise ValueError(f"unknown music21 collections {unknown}; the bundled corpus has {sorted(known)}")
        wanted = set(collections)
    else:
        wanted = known - set(EXCLUDED_BY_DEFAULT)
    analyses = _analyses(root)
    pieces = []
    for file in files:
        rel = file.relative_to(root).as_posix()
        collection = rel.split("/")[0]
        if collection not in wanted:
            continue
        numbers = _abc_numbers(file) if file.suffix == ".abc" else []
        stem = _safe(rel.rsplit(".", 1)[0])
        if len(numbers) > 1 and collection not in MERGED_OPUS_COLLECTIONS:
            width = max(4, len(str(max(numbers))))
            pieces += [Piece(f"{rel}#{n}", collection, f"{stem}-{n:0{width}d}.mid") for n in numbers]
        else:
            pieces.append(Piece(rel, collection, f"{stem}.mid", analyses.get(rel, "")))
    return pieces


def _score_files() -> list[Path]:
    from music21 import corpus

    preference = {ext: i for i, ext in enumerate(CORPUS_EXTENSIONS)}
    best: dict[Path, Path] = {}
    for p in map(Path, corpus.getPaths()):
        if p.suffix not in preference:
            continue
        key = p.with_suffix("")
        if key not in best or preference[p.suffix] < preference[best[key].suffix]:
            best[key] = p
    return sorted(best.values())


def _abc_numbers(file: Path) -> list[int]:
    """Reference numbers of the X: tunes of an ABC file, as music21 matches them (``X: 0490`` is 490)."""
    numbers = []
    for line in file.read_text(encoding="latin-1").split("\n"):
        if line.strip().startswith("X:"):
            try:
                numbers.append(int(line.replace(" ", "").rstrip()[2:]))
            except ValueError:
                continue
    return list(dict.fromkeys(numbers))  # music21 reads the first of a duplicated number only


def _analyses(root: Path) -> dict[str, str]:
    """Score corpus path -> .rntxt corpus path, for the bundled Roman-numeral analyses that name their score."""
    links = {}
    for rn in sorted(root.rglob("*.rntxt")):
        rel = rn.relative_to(root).as_posix()
        if rn.parent.name == "choraleAnalyses":  # riemenschneider001.rntxt says "BWV: 269"
            match = re.search(r"^BWV:\s*([\d.]+)", rn.read_text(encoding="utf-8", errors="replace"), re.M)
            score = root / "bach" / f"bwv{match.group(1)}.mxl" if match else None
        else:  # monteverdi/madrigal.3.1.rntxt analyses monteverdi/madrigal.3.1.mxl
            score = rn.with_suffix(".mxl")
        if score is not None and score.exists():
            links[score.relative_to(root).as_posix()] = rel
    return links


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._/-]", "_", name)


# ----------------------------------------------------------------------------------------------------------
# One piece: score -> MIDI bytes (runs in a worker)


class TooLargeError(Exception):
    """The MIDI would exceed ``max_bytes``."""


class RepeatExpansionError(Exception):
    """Notes were written past the score's last bar: music21 expanded something we failed to strip."""


@dataclass(frozen=True)
class Bar:
    """A bar of the written score: where it starts and how long it is (quarters), and the meter it is in."""

    offset: Fraction
    length: Fraction
    meter: tuple[int, int]  # the time signature in force, e.g. (4, 4)

    @property
    def full(self) -> bool:
        return self.length == Fraction(4 * self.meter[0], self.meter[1])

    @property
    def written(self) -> tuple[int, int]:
        """The time signature that makes this bar exactly as long as it is (the pickup of 4/4 is 1/4)."""
        if self.full:
            return self.meter
        den = self.meter[1]
        while den <= _MAX_DENOMINATOR:
            num = self.length * den / 4
            if num.denominator == 1 and 1 <= num <= 255:
                return int(num), den
            den *= 2
        return self.meter  # not expressible (a bar of 1/3 quarter): keep the meter, downbeats drift


def load_score(piece: Piece):
    """Parse the piece from the bundled corpus (never from music21's pickle cache) into a Score."""
    from music21 import converter, stream

    corpus_path, number = split_source(piece.source)
    path = corpus_root() / corpus_path
    if not path.exists():
        raise FileNotFoundError(f"{corpus_path} is not in the bundled music21 corpus")
    kwargs = {"number": number} if number is not None else {}
    score = converter.parse(path, forceSource=True, **kwargs)
    if isinstance(score, stream.Opus):
        if piece.collection not in MERGED_OPUS_COLLECTIONS:
            raise ValueError(f"{piece.source} holds {len(score.scores)} scores; expected one")
        score = score.mergeScores()
    if not isinstance(score, stream.Score):
        wrapped = stream.Score()
        wrapped.insert(0, score)
        score = wrapped
    return score


def score_to_midi(score) -> tuple[bytes, dict]:
    """MIDI bytes of the score in its written form, and the manifest fields that describe it."""
    from music21 import defaults
    from music21.midi import translate

    score = copy.deepcopy(score)  # measures may share one TimeSignature object; music21 fails on those
    _strip_repeats(score)
    bars = bar_lines(score)
    if not score.recurse().notes:
        raise ValueError("the score has no notes")
    tpq, exact = _ticks_per_quarter(score, bars)
    info = describe(score, bars)
    saved = defaults.ticksPerQuarter
    defaults.ticksPerQuarter = tpq  # music21 reads it at call time for every onset and duration
    try:
        midi_file = translate.streamToMidiFile(score, addEndDelay=False)
        data = midi_file.writestr()
    finally:
        defaults.ticksPerQuarter = saved
    if bars:
        data = _rewrite_meters(data, bars, tpq)
    return data, {**info, "ticks_per_quarter": tpq, "exact_timing": exact}


def _strip_repeats(score) -> None:
    """Remove what would make music21 expand repeats: repeat barlines, volta brackets, segno/coda/D.C. marks."""
    from music21 import bar, stream

    for m in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(m.leftBarline, bar.Repeat):
            m.leftBarline = None
        if isinstance(m.rightBarline, bar.Repeat):
            m.rightBarline = bar.Barline("regular")
    for s in score.recurse(streamsOnly=True, includeSelf=True):
        s.removeByClass(["RepeatBracket", "RepeatExpression"])


def bar_lines(score) -> list[Bar]:
    """The written bars, from the measures of the first part (the parts of a score share their bar lines)."""
    from music21 import meter, stream

    part = score.parts[0] if score.parts else score
    measures = list(part.getElementsByClass(stream.Measure))
    if not measures:
        return []
    first = measures[0].timeSignature or score.recurse().getElementsByClass(meter.TimeSignature).first()
    current = (first.numerator, first.denominator) if first is not None else (4, 4)
    end = Fraction(score.highestTime)
    bars = []
    for i, m in enumerate(measures):
        if m.timeSignature is not None:
            current = (m.timeSignature.numerator, m.timeSignature.denominator)
        start = Fraction(part.elementOffset(m))
        if i + 1 < len(measures):
            stop = Fraction(part.elementOffset(measures[i + 1]))
        else:
            stop = max(end, start + Fraction(m.duration.quarterLength))
        if stop > start:
            bars.append(Bar(start, stop - start, current))
    return bars


def describe(score, bars: Sequence[Bar]) -> dict:
    """Manifest fields read from the score: metadata, first full-bar meter, key, tempo, pickup."""
    from music21 import key, tempo

    md = score.metadata
    title = (md.title or md.movementName or "") if md is not None else ""
    if re.search(r"\.(mxl|xml|musicxml|krn|abc)$", title):
        title = ""  # music21 falls back to the file name
    full = next((b for b in bars if b.full), bars[0] if bars else None)
    pickup = bars[0].length if len(bars) > 1 and not bars[0].full and bars[0].length < bars[1].length else 0
    written_key = score.recurse().getElementsByClass(key.Key).first()
    if written_key is None:  # only a key signature (or nothing): Krumhansl-Schmuckler, ~50 ms for a chorale
        written_key = score.analyze("key")
    mark = score.recurse().getElementsByClass(tempo.MetronomeMark).first()
    qpm = mark.getQuarterBPM() if mark is not None and mark.number is not None else None
    return {
        "composer": (md.composer or "") if md is not None else "",
        "title": title,
        "time_signature": f"{full.meter[0]}/{full.meter[1]}" if full else "",
        "key": f"{written_key.tonic.name} {written_key.mode}",
        "n_parts": len(score.parts) or 1,
        "n_bars": len(bars),
        "pickup": float(pickup),
        "tempo_qpm": float(qpm) if qpm else 120.0,
    }


def _ticks_per_quarter(score, bars: Sequence[Bar]) -> tuple[int, bool]:
    """The coarsest resolution (a multiple of 480) on which every onset, duration and bar line is a whole tick."""
    denominators = {b.offset.denominator for b in bars} | {b.length.denominator for b in bars}
    for el in score.flatten().notesAndRests:
        denominators.add(Fraction(el.offset).denominator)
        denominators.add(Fraction(el.quarterLength).denominator)
    tpq = BASE_TICKS_PER_QUARTER
    for d in denominators:
        tpq = math.lcm(tpq, d)
        if MAX_TICKS_PER_QUARTER % tpq:
            return MAX_TICKS_PER_QUARTER, False  # an 11-tuplet or the like: music21 rounds to its own grid
    return tpq, True


def _rewrite_meters(data: bytes, bars: Sequence[Bar], tpq: int) -> bytes:
    """Replace music21's time signatures by one per change of written bar length, so bar lines are true.

    Also refuses a file whose notes run past the last bar: that would mean repeats were expanded after all.
    """
    import mido

    midi = mido.MidiFile(file=io.BytesIO(data))
    end_tick = (bars[-1].offset + bars[-1].length) * tpq
    tracks = []
    for i, track in enumerate(midi.tracks):
        events, now = [], 0
        for msg in track:
            now += msg.time
            if msg.type == "time_signature":
                continue
            if msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
                if now > end_tick:
                    raise RepeatExpansionError(f"a note ends at tick {now}, after the last bar line at {end_tick}")
            events.append((now, msg))
        if i == 0:
            previous = None
            for b in bars:
                if b.written != previous:
                    num, den = b.written
                    ts = mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0)
                    events.append((int(b.offset * tpq), ts))
                    previous = b.written
            # a time signature goes before anything else at its tick (stable sort keeps the rest in order)
            events.sort(key=lambda e: (e[0], 0 if e[1].type == "time_signature" else 1 if e[1].is_meta else 2))
            events = [e for e in events if e[1].type != "end_of_track"] + [
                (max(t for t, _ in events), mido.MetaMessage("end_of_track", time=0))
            ]
        tracks.append(events)
    out = mido.MidiFile(type=midi.type, ticks_per_beat=midi.ticks_per_beat)
    for events in tracks:
        track, last = mido.MidiTrack(), 0
        for tick, msg in events:
            track.append(msg.copy(time=tick - last))
            last = tick
        out.tracks.append(track)
    buffer = io.BytesIO()
    out.save(file=buffer)
    return buffer.getvalue()


def convert_piece(piece: Piece, out_dir: Path, max_bytes: int) -> dict:
    """Convert one piece and write its MIDI (temp name, then ``os.replace``); the manifest row. Never raises."""
    start = time.perf_counter()
    row: dict = {"path": piece.path, "collection": piece.collection, "source": piece.source,
                 "analysis": piece.analysis}
    try:
        data, info = score_to_midi(load_score(piece))
        if len(data) > max_bytes:
            raise TooLargeError(f"the MIDI would be {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit")
        target = Path(out_dir) / piece.path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        row.update(info, content_hash=hashlib.sha256(data).hexdigest(), status=STATUS_OK, reason="")
    except Exception as exc:  # noqa: BLE001 - every failure of one piece is recorded in its row
        row.update(status=STATUS_FAILED, reason=_reason(exc))
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def _reason(exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# ----------------------------------------------------------------------------------------------------------
# Many pieces: worker processes, per-piece timeout, resumable manifest


def convert_corpus(
    out_dir: str | os.PathLike,
    collections: Sequence[str] | None = None,
    limit: int | None = None,
    config: ConvertConfig | None = None,
    progress: Callable[[dict], None] | None = None,
) -> Summary:
    """Convert the bundled corpus (the first ``limit`` pieces of ``collections``) into ``out_dir``."""
    pieces = list_pieces(collections)
    return convert_pieces(pieces[:limit] if limit is not None else pieces, out_dir, config, progress)


def convert_pieces(
    pieces: Iterable[Piece],
    out_dir: str | os.PathLike,
    config: ConvertConfig | None = None,
    progress: Callable[[dict], None] | None = None,
) -> Summary:
    """Convert ``pieces`` into ``out_dir``, skipping those the manifest already has; rows of others are kept."""
    config = config or ConvertConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST_NAME
    started = time.perf_counter()
    _remove_leftovers(out_dir)
    rows = load_rows(manifest)
    summary = Summary(manifest=manifest)
    todo = []
    for piece in dict.fromkeys(pieces):
        old = rows.get(piece.source)
        if old and old["status"] == STATUS_OK and (out_dir / old["path"]).exists():
            summary.skipped += 1
        elif old and old["status"] == STATUS_FAILED and not config.retry_failed:
            summary.skipped += 1
        else:
            todo.append(piece)
    if not todo:
        if not manifest.exists():
            write_manifest(manifest, rows.values())
        summary.seconds = time.perf_counter() - started
        return summary

    unsaved = 0
    for row in _run_pool(todo, out_dir, config):
        rows[row["source"]] = row
        if row["status"] == STATUS_OK:
            summary.converted += 1
        else:
            summary.failed[row["reason"].split(":")[0]] += 1
        if progress is not None:
            progress(row)
        unsaved += 1
        if unsaved >= config.flush_every:
            write_manifest(manifest, rows.values())
            unsaved = 0
    write_manifest(manifest, rows.values())
    summary.seconds = time.perf_counter() - started
    return summary


def _remove_leftovers(out_dir: Path) -> None:
    """Temp files of a killed run: half-written MIDI (``x.mid.<pid>.tmp``) and manifest (``manifest.csv.tmp``)."""
    for tmp in out_dir.rglob("*.tmp"):
        if tmp.name.endswith(".tmp") and (".mid." in tmp.name or tmp.name == MANIFEST_NAME + ".tmp"):
            tmp.unlink(missing_ok=True)


def _worker(conn, out_dir: str, max_bytes: int) -> None:
    """Worker loop: import music21 once, say ready, then convert pieces until told to stop (None)."""
    import warnings

    warnings.simplefilter("ignore")
    import music21  # noqa: F401 - the import is the slow part of a worker's start

    conn.send("ready")
    while True:
        piece = conn.recv()
        if piece is None:
            return
        conn.send(convert_piece(piece, Path(out_dir), max_bytes))


@dataclass
class _Slot:
    process: mp.process.BaseProcess
    conn: object
    ready: bool = False
    piece: Piece | None = None
    deadline: float = math.inf


def _run_pool(pieces: Sequence[Piece], out_dir: Path, config: ConvertConfig):
    """Yield one manifest row per piece, converting on ``workers`` processes.

    A pool of long-lived workers, one piece in flight per worker, so a piece's clock starts when its worker
    receives it. A worker past its deadline is killed (SIGKILL: music21 may be deep in C code) and replaced;
    the other workers keep going. A worker that dies on its own (out of memory) is replaced the same way.
    """
    ctx = mp.get_context("spawn")  # no fork: the caller may hold threads (Prefect, Dask)
    n = max(1, min(config.workers or os.cpu_count() or 1, len(pieces)))
    queue = deque(pieces)

    def start() -> _Slot:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_worker, args=(child, str(out_dir), config.max_bytes), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def stop(slot: _Slot, kill: bool) -> None:
        if kill:
            slot.process.kill()
        else:
            try:
                slot.conn.send(None)
            except OSError:
                pass
        slot.process.join(timeout=5)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
        slot.conn.close()

    def failed(piece: Piece, reason: str, seconds: float) -> dict:
        return {"path": piece.path, "collection": piece.collection, "source": piece.source,
                "analysis": piece.analysis, "status": STATUS_FAILED, "reason": reason, "seconds": round(seconds, 3)}

    slots = [start() for _ in range(n)]
    deaths = 0  # workers that died before taking a piece: a broken environment, not a bad piece
    try:
        while queue or any(s.piece is not None for s in slots):
            for slot in slots:
                if slot.ready and slot.piece is None and queue:
                    slot.piece = queue.popleft()
                    slot.conn.send(slot.piece)
                    slot.deadline = time.monotonic() + config.timeout_s
            now = time.monotonic()
            wait_s = min((s.deadline for s in slots), default=math.inf) - now
            ready = wait([s.conn for s in slots], timeout=max(0.0, min(wait_s, 5.0)))
            for i, slot in enumerate(slots):
                if slot.conn in ready:
                    try:
                        message = slot.conn.recv()
                    except (EOFError, OSError):  # the worker died: out of memory, a crash in C code
                        code = slot.process.exitcode
                        stop(slot, kill=True)
                        if slot.piece is None:
                            deaths += 1
                            if deaths > 3:
                                raise RuntimeError(f"corpus worker processes die on start (exit code {code})")
                        slots[i] = start()
                        if slot.piece is not None:
                            yield failed(slot.piece, f"WorkerDied: exit code {code}", 0.0)
                        continue
                    if message == "ready":
                        slot.ready = True
                    else:
                        slot.piece, slot.deadline = None, math.inf
                        yield message
                elif slot.piece is not None and time.monotonic() >= slot.deadline:
                    piece = slot.piece
                    stop(slot, kill=True)
                    slots[i] = start()
                    yield failed(piece, "timeout", config.timeout_s)
    finally:
        for slot in slots:
            stop(slot, kill=slot.piece is not None)
