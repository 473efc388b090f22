"""Featurizing speed against pretty_midi's parse alone, and whether the store write keeps up.

    .venv/bin/python bench/featurize.py [--pop 40] [--demo data/corpus/manifest.csv] [--repeat 3]

Prints, for the demo corpus (music21 scores) and for pop-style multitrack files, the median time per file
of `pretty_midi.PrettyMIDI(path)` and of `bat.featurize.featurize_path(path)` (parse + beats + all
features), and their ratio (target: bat costs at most 1/10 of pretty_midi's parse). Then it writes the
featurized songs into a store and prints write throughput against featurizing throughput.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pretty_midi  # noqa: E402

from bat.featurize import featurize_path  # noqa: E402
from bat.ingest.sources import expand_inputs  # noqa: E402
from bat.store.writer import StoreWriter, write_part  # noqa: E402
from pop_midi import write_pop_songs  # noqa: E402

pretty_midi.pretty_midi.MAX_TICK = 1e10  # music21 writes 10,080 ticks per quarter


def _median_seconds(fn, paths, repeat: int) -> float:
    times = []
    for path in paths:
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            fn(path)
            best = min(best, time.perf_counter() - started)
        times.append(best)
    return statistics.median(times)


def compare(name: str, paths: list[Path], repeat: int) -> dict:
    featurize_path(paths[0])  # warm imports and tables
    reference = _median_seconds(lambda p: pretty_midi.PrettyMIDI(str(p)), paths, repeat)
    ours = _median_seconds(featurize_path, paths, repeat)
    print(f"{name:<12} {len(paths):>5} files  pretty_midi parse {reference * 1e3:8.2f} ms  "
          f"bat featurize {ours * 1e3:7.2f} ms  ratio {reference / ours:6.1f}x  "
          f"({'meets' if ours <= reference / 10 else 'misses'} the 1/10 target)")
    return {"reference": reference, "ours": ours}


def store_throughput(paths: list[Path]) -> None:
    started = time.perf_counter()
    songs = [featurize_path(p) for p in paths]
    featurize_seconds = time.perf_counter() - started
    beats = sum(s.n_beats for s in songs)
    with tempfile.TemporaryDirectory() as folder:
        store = str(Path(folder) / "bench.zarr")
        with StoreWriter(store) as writer:
            started = time.perf_counter()
            for k in range(0, len(songs), 64):
                writer.commit(write_part(store, songs[k : k + 64]), [])
            write_seconds = time.perf_counter() - started
        size = sum(f.stat().st_size for f in Path(store).rglob("*") if f.is_file())
    print(f"store write  {len(songs)} songs, {beats} beats: featurize {beats / featurize_seconds:,.0f} beats/s, "
          f"write+commit {beats / write_seconds:,.0f} beats/s (ratio {featurize_seconds / write_seconds:.1f}x: "
          f"{'keeps up' if write_seconds <= featurize_seconds else 'falls behind'}); "
          f"{size / 1e6:.2f} MB on disk, {size / beats:.1f} bytes/beat")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pop", type=int, default=40, help="pop-style multitrack files to generate")
    parser.add_argument("--demo", default="data/corpus/manifest.csv", help="demo corpus manifest (built if missing)")
    parser.add_argument("--demo-files", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    manifest = Path(args.demo)
    if not manifest.exists():
        from bat.corpus.demo import build_demo_corpus

        manifest = build_demo_corpus(manifest.parent, size="demo")
    demo = [Path(p) for p in expand_inputs([str(manifest)], limit=args.demo_files)]
    pop = write_pop_songs(Path(tempfile.gettempdir()) / "bat-bench-pop", args.pop)
    compare("demo corpus", demo, args.repeat)
    compare("pop-style", pop, args.repeat)
    store_throughput(demo + pop)


if __name__ == "__main__":
    main()
