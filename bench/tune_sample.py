"""A random sample of folk and fiddle tunes from the music21 corpus, none of them in the demo corpus.

The demo corpus picks Essen tunes evenly per written meter, so rare meters (3/8, 5/8, 6/4, 2/2: 31% of its
folk songs, 8% of the collection) weigh far more there than in the collection, and the beat tracker's
weights were fitted on half of its files. This sample is drawn uniformly from the whole collections, so
bench/beats.py can report what to expect on a typical tune, on files the tracker has never seen:

    .venv/bin/python bench/tune_sample.py data/tune-sample [--essen 150] [--fiddle 25] [--seed 0]
    .venv/bin/python bench/beats.py --demo data/tune-sample --pop 0 --audio 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bat.corpus.demo import demo_pieces  # noqa: E402
from bat.corpus.manifest import MANIFEST_NAME  # noqa: E402
from bat.corpus.music21_corpus import ConvertConfig, Piece, convert_pieces, list_pieces  # noqa: E402

FIDDLE_COLLECTIONS = ("oneills1850", "ryansMammoth", "airdsAirs")


def sample_pieces(essen: int, fiddle: int, seed: int, exclude: frozenset[str] = frozenset()) -> list[Piece]:
    """``essen`` Essen tunes and ``fiddle`` tunes of each fiddle collection, uniformly at random; the demo corpus
    and the sources in ``exclude`` left out (the tracker's fitting sample leaves out the benchmark's)."""
    in_demo = {piece.source for piece in demo_pieces("demo")} | {piece.source for piece in demo_pieces("test")} | set(exclude)
    rng = np.random.default_rng(seed)
    chosen: list[Piece] = []
    for collection, n in (("essenFolksong", essen), *((name, fiddle) for name in FIDDLE_COLLECTIONS)):
        pool = [piece for piece in list_pieces([collection]) if piece.source not in in_demo]
        chosen += [pool[i] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]
    return chosen


HELD_OUT = (150, 25, 0)  # the benchmark's held-out sample: Essen tunes, tunes per fiddle collection, seed


def fitting_draws(essen: tuple[int, ...], fiddle: tuple[int, ...]) -> dict[str, list[Piece]]:
    """The fit scripts' tunes: ``"held"``, the benchmark's held-out sample, and draws "1", "2"... (seeds 1, 2...;
    ``essen[k]`` Essen and ``fiddle[k]`` tunes per fiddle collection), each leaving out the sample and the
    draws before it."""
    draws = {"held": sample_pieces(*HELD_OUT)}
    taken = frozenset(piece.source for piece in draws["held"])
    for seed, (n_essen, n_fiddle) in enumerate(zip(essen, fiddle), start=1):
        draws[str(seed)] = sample_pieces(n_essen, n_fiddle, seed, exclude=taken)
        taken |= {piece.source for piece in draws[str(seed)]}
    return draws


def converted(pieces: list[Piece], folder: Path) -> list[str]:
    """The pieces converted to MIDI in ``folder`` (skipped where already there), in the manifest's order."""
    from bat.ingest.sources import expand_inputs

    convert_pieces(pieces, folder, ConvertConfig())
    return expand_inputs([str(folder / MANIFEST_NAME)])


def performed(source: str, index: int, folder: Path):
    """(performance, song): ``source`` humanized with ``index`` as the seed, as bench/beats.py plays it, and the
    song bat loads from the played file."""
    from bat.ingest.midi import load_midi
    from tests.beats.performed import humanize

    performance = humanize(source, seed=index)
    played = folder / f"played_{index}.mid"
    performance.midi.write(str(played))
    return performance, load_midi(played)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--essen", type=int, default=150, help="Essen folk songs")
    parser.add_argument("--fiddle", type=int, default=25, help="tunes from each of O'Neill's, Ryan's and Aird's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    summary = convert_pieces(sample_pieces(args.essen, args.fiddle, args.seed), args.out_dir, ConvertConfig())
    print(summary.format())
    print(args.out_dir / MANIFEST_NAME)


if __name__ == "__main__":
    main()
