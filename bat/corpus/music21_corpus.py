"""Convert the corpus bundled with music21 into one MIDI file per piece plus ``manifest.csv``.

    bat corpus music21 --out data/music21                                  # everything, all cores
    bat corpus music21 --out data/music21 --collections bach,essenFolksong --limit 100 --workers 2

Each piece keeps its written form (``bat.corpus.score_midi``: every bar of the score a bar of the file). Pieces
are converted in worker processes under a per-piece timeout that kills the worker; the manifest is rewritten
atomically every few pieces, so a killed run resumes where it stopped and a finished run is a no-op.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from bat.corpus.manifest import (
    MANIFEST_NAME,
    STATUS_FAILED,
    STATUS_OK,
    load_rows,
    split_source,
    write_manifest,
)
from bat.corpus.score_midi import score_to_midi

# Same piece in two formats (beethoven/opus18no1 has .krn and .mxl): keep the first in this order.
CORPUS_EXTENSIONS = (".mxl", ".musicxml", ".xml", ".krn", ".abc")
# music21's own test files (layout, chord-symbol and tuplet tests), not repertoire; convert them by naming them.
EXCLUDED_BY_DEFAULT = ("demos", "theoryExercises")
# Collections whose ABC files hold one voice per X: tune: the tunes of a file are the parts of one piece.
MERGED_OPUS_COLLECTIONS = ("josquin",)


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
    flush_s: float = 30.0  # ...or this many seconds of work, whichever comes first


@dataclass
class Summary:
    """What a run did; ``format()`` is the CLI's report."""

    converted: int = 0
    skipped: int = 0  # already ok in the manifest
    skipped_failed: int = 0  # failed in an earlier run and not retried (no --retry-failed)
    failed: Counter = field(default_factory=Counter)  # reason head ("timeout", "ParseError"...) -> count
    seconds: float = 0.0
    manifest: Path | None = None

    def format(self) -> str:
        lines = [
            f"converted {self.converted}, skipped (already done) {self.skipped}, "
            f"failed {sum(self.failed.values())} in {self.seconds:.1f} s",
        ]
        if self.skipped_failed:
            lines.append(f"  not retried: {self.skipped_failed} pieces that failed before (use --retry-failed)")
        lines += [f"  failed: {reason}: {n}" for reason, n in self.failed.most_common()]
        if self.manifest is not None:
            lines.append(f"manifest: {self.manifest}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Which pieces exist


def corpus_root() -> Path:
    """The folder of the corpus bundled with the installed music21 (no download, ever)."""
    import importlib.util

    spec = importlib.util.find_spec("music21")  # not `import music21`: a second of start-up for a path
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("music21 is not installed; `pip install music21` (its corpus comes with it)")
    return Path(next(iter(spec.submodule_search_locations))) / "corpus"


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
            raise UnknownCollectionError(
                f"unknown music21 collections {unknown}; the bundled corpus has {sorted(known)}")
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
    """Score files of the bundled corpus (what ``corpus.getPaths()`` lists, without its seconds of start-up)."""
    preference = {ext: i for i, ext in enumerate(CORPUS_EXTENSIONS)}
    best: dict[Path, Path] = {}
    for p in corpus_root().rglob("*"):
        if p.suffix not in preference or not p.is_file():
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
            match = re.search(r"^BWV:\s*(\d+)(?:\((\d+)\))?([\d.]*)", rn.read_text(encoding="utf-8", errors="replace"),
                              re.M)
            if match:  # "248(2).12" is the Christmas Oratorio's part 2, no. 12: bwv248.12-2.mxl
                number, part, rest = match.groups()
                score = root / "bach" / f"bwv{number}{rest}{'-' + part if part else ''}.mxl"
            else:
                score = None
        else:  # monteverdi/madrigal.3.1.rntxt analyses monteverdi/madrigal.3.1.mxl
            score = rn.with_suffix(".mxl")
        if score is not None and score.exists():
            links[score.relative_to(root).as_posix()] = rel
    return links


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._/-]", "_", name)


# ----------------------------------------------------------------------------------------------------------
# One piece: score -> MIDI bytes (runs in a worker)


class UnknownCollectionError(ValueError):
    """A collection name that is not a folder of the bundled corpus."""


class TooLargeError(Exception):
    """The MIDI would exceed ``max_bytes``."""




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



def convert_piece(piece: Piece, out_dir: Path, max_bytes: int) -> dict:
    """Convert one piece and write its MIDI (temp name, then ``os.replace``); the manifest row. Never raises."""
    start = time.perf_counter()
    row: dict = {"path": piece.path, "collection": piece.collection, "source": piece.source,
                 "analysis": piece.analysis}
    try:
        data, info = score_to_midi(load_score(piece), copy_score=False)
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
    with (out_dir / ".lock").open("a") as lock:  # "a": taking the lock leaves the folder's mtimes alone
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run on the same folder waits, then finds the work done
        return _convert_locked(list(pieces), out_dir, config, progress)


def _convert_locked(pieces: list[Piece], out_dir: Path, config: ConvertConfig, progress) -> Summary:
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
            summary.skipped_failed += 1
        else:
            todo.append(piece)
    if not todo:
        if not manifest.exists():
            write_manifest(manifest, rows.values())
        summary.seconds = time.perf_counter() - started
        return summary

    unsaved, saved_at = 0, time.monotonic()
    try:
        for row in _run_pool(todo, out_dir, config):
            rows[row["source"]] = row
            if row["status"] == STATUS_OK:
                summary.converted += 1
            else:
                summary.failed[row["reason"].split(":")[0]] += 1
            if progress is not None:
                progress(row)
            unsaved += 1
            if unsaved >= config.flush_every or time.monotonic() - saved_at >= config.flush_s:
                write_manifest(manifest, rows.values())
                unsaved, saved_at = 0, time.monotonic()
    finally:  # also on Ctrl-C: keep what was converted (a SIGKILL loses at most the last batch)
        write_manifest(manifest, rows.values())
    summary.seconds = time.perf_counter() - started
    return summary


def _remove_leftovers(out_dir: Path) -> None:
    """Temp files of a killed run: half-written MIDI (``x.mid.<pid>.tmp``) and manifest (``manifest.csv.tmp``)."""
    for tmp in out_dir.rglob("*.tmp"):
        if tmp.name.endswith(".tmp") and (".mid." in tmp.name or tmp.name == MANIFEST_NAME + ".tmp"):
            tmp.unlink(missing_ok=True)


def _worker_main() -> None:
    """Worker loop (``python -c`` entry): import music21 once, say ready, convert pieces until sent None.

    argv: task fd, result fd, output folder, max bytes. Warnings go nowhere: failures travel in the rows.
    """
    import warnings

    warnings.simplefilter("ignore")
    import music21  # noqa: F401 - the import is the slow part of a worker's start

    tasks = Connection(int(sys.argv[1]), writable=False)
    results = Connection(int(sys.argv[2]), readable=False)
    out_dir, max_bytes = Path(sys.argv[3]), int(sys.argv[4])
    results.send("ready")
    while (piece := tasks.recv()) is not None:
        results.send(convert_piece(piece, out_dir, max_bytes))


@dataclass
class _Worker:
    """A worker process, the two ends of its pipes, and the piece it is converting (None: idle)."""

    process: subprocess.Popen
    tasks: Connection
    results: Connection
    ready: bool = False
    piece: Piece | None = None
    deadline: float = math.inf

    @classmethod
    def start(cls, out_dir: Path, max_bytes: int) -> _Worker:
        """A plain subprocess, not multiprocessing: works from unguarded scripts, threaded and daemonic callers."""
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])  # so `bat` imports without being installed
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        code = "from bat.corpus.music21_corpus import _worker_main; _worker_main()"
        args = [sys.executable, "-c", code, str(task_r), str(result_w), str(out_dir), str(max_bytes)]
        try:
            process = subprocess.Popen(args, pass_fds=(task_r, result_w), env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL)
        finally:
            os.close(task_r)
            os.close(result_w)
        return cls(process, Connection(task_w, readable=False), Connection(result_r, writable=False))

    def send(self, piece: Piece, timeout_s: float) -> None:
        self.piece, self.deadline = piece, time.monotonic() + timeout_s
        self.tasks.send(piece)

    def stop(self, kill: bool = False) -> None:
        """Ask the worker to finish (or SIGKILL it: a timed-out piece may be deep in a loop) and reap it."""
        if not kill:
            try:
                self.tasks.send(None)
            except OSError:
                kill = True
        if kill:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.tasks.close()
        self.results.close()


def _failed_row(piece: Piece, reason: str, seconds: float) -> dict:
    return {"path": piece.path, "collection": piece.collection, "source": piece.source, "analysis": piece.analysis,
            "status": STATUS_FAILED, "reason": reason, "seconds": round(seconds, 3)}


def _run_pool(pieces: Sequence[Piece], out_dir: Path, config: ConvertConfig) -> Iterator[dict]:
    """Yield one manifest row per piece, converting on ``workers`` long-lived processes.

    One piece in flight per worker, so a piece's clock starts when its worker receives it. A worker past its
    deadline is killed and replaced while the others keep going; so is one that dies on its own (out of memory).
    """
    n = max(1, min(config.workers or os.cpu_count() or 1, len(pieces)))
    queue = deque(pieces)
    workers = [_Worker.start(out_dir, config.max_bytes) for _ in range(n)]
    deaths = 0  # workers that died before taking a piece: a broken environment, not a bad piece
    try:
        while queue or any(w.piece is not None for w in workers):
            for w in workers:
                if w.ready and w.piece is None and queue:
                    w.send(queue.popleft(), config.timeout_s)
            wait_s = min(w.deadline for w in workers) - time.monotonic()
            readable = wait([w.results for w in workers], timeout=max(0.0, min(wait_s, 5.0)))
            for i, w in enumerate(workers):
                if w.results in readable:
                    try:
                        message = w.results.recv()
                    except (EOFError, OSError):  # the worker died: out of memory, a crash in C code
                        w.stop(kill=True)
                        workers[i] = _Worker.start(out_dir, config.max_bytes) if queue or w.piece is None else None
                        if w.piece is not None:
                            yield _failed_row(w.piece, f"WorkerDied: exit code {w.process.returncode}", 0.0)
                        else:
                            deaths += 1
                            if deaths > 3:
                                raise RuntimeError(
                                    f"corpus workers die on start (exit code {w.process.returncode}); "
                                    f"try: {sys.executable} -c 'import bat.corpus.music21_corpus, music21'"
                                ) from None
                        continue
                    if message == "ready":
                        w.ready = True
                    else:
                        w.piece, w.deadline = None, math.inf
                        yield message
                elif w.piece is not None and time.monotonic() >= w.deadline:
                    w.stop(kill=True)
                    workers[i] = _Worker.start(out_dir, config.max_bytes) if queue else None
                    yield _failed_row(w.piece, "timeout", config.timeout_s)
            workers = [w for w in workers if w is not None]  # not replaced: nothing left to give them
    finally:
        for w in workers:
            if w is not None:
                w.stop(kill=w.piece is not None or not w.ready)  # busy or still importing: no need to wait
