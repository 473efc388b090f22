"""How close a performance's features come to its score's: the price of a tracked grid, beat by beat.

    .venv/bin/python bench/tracked_features.py [--demo data/demo-corpus] [--songs 8]

Each song (pop-style multitrack files from ``pop_midi.pop_song``, and the demo corpus's chorales and Essen folk
songs, ``--songs`` of each) is featurized twice: its quantized file on the tempo map's grid, and a humanized
performance of it (bench/beats.py's: tempo drift, ±25 ms onset jitter, velocity noise) on the grid bat tracks.
Each tracked beat within 70 ms of a true beat is compared with that beat of the score; printed per feature
group, the share of bits that agree and the share of beats whose whole group agrees, with a tracked beat taking
in the onsets played just ahead of it (``bat.beats.membership.EARLY_SHARE``) and without (0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pretty_midi  # noqa: E402

from bat.beats import membership  # noqa: E402
from bat.featurize import featurize_path  # noqa: E402
from bat.features.registry import FEATURE_GROUPS, FEATURES  # noqa: E402
from beats import kind_of  # noqa: E402
from bat.ingest.sources import expand_inputs  # noqa: E402
from pop_midi import write_pop_songs  # noqa: E402
from tests.beats.performed import humanize  # noqa: E402

pretty_midi.pretty_midi.MAX_TICK = 1e10  # music21 writes 10,080 ticks per quarter
warnings.filterwarnings("ignore")
GROUPS = [g for g in FEATURE_GROUPS if g != "meter"]
EARLY_SHARE = membership.EARLY_SHARE  # bar positions: bench/beats.py scores the downbeats


def pairs(songs: list[Path], folder: Path) -> list[tuple[Path, Path, np.ndarray]]:
    """(quantized file, performed file, true beat times of the performance) per song."""
    found = []
    for index, quantized in enumerate(songs):
        performance = humanize(quantized, seed=index, truth="tempo_map")
        played = folder / f"played_{index}.mid"
        performance.midi.write(str(played))
        found.append((quantized, played, performance.beats))
    return found


def agreement(songs, early_share: float) -> dict[str, tuple[float, float]]:
    """Per group: (share of bits that agree, share of beats whose whole group agrees), over matched beats."""
    membership.EARLY_SHARE = early_share  # read at each call of notes_in_beats; put back below
    group_of = np.array([f.group for f in FEATURES])
    bits: dict[str, list[np.ndarray]] = {g: [] for g in GROUPS}
    for quantized, played, true_beats in songs:
        score, performed = featurize_path(quantized), featurize_path(played)
        if performed.beat_source == "tempo_map" or score.n_beats != len(true_beats):
            continue
        distance = np.abs(performed.beat_times[:, None] - true_beats[None, :])
        matched = distance.min(axis=1) < 0.07
        truth = score.features[distance.argmin(axis=1)[matched]]
        for group in GROUPS:
            columns = group_of == group
            bits[group].append(performed.features[matched][:, columns] == truth[:, columns])
    membership.EARLY_SHARE = EARLY_SHARE
    return {g: (float(np.concatenate(v).mean()), float(np.concatenate(v).all(axis=1).mean())) for g, v in bits.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=ROOT / "data" / "demo-corpus")
    parser.add_argument("--songs", type=int, default=8)
    args = parser.parse_args()
    files = expand_inputs([str(args.demo / "manifest.csv")]) if (args.demo / "manifest.csv").exists() else []
    if not files:
        print(f"{args.demo}: no demo corpus (bat demo --out {args.demo}); pop files only", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kinds = {"pop": write_pop_songs(folder / "pop_files", args.songs)}
        for kind in ("chorale", "folk song"):
            kinds[kind] = [Path(f) for f in files if kind_of(f) == kind][: args.songs]
        print(f"{'kind':<10} {'songs':>5} {'group':<12} {'bits, 0':>9} {'bits':>9} {'beats, 0':>9} {'beats':>9}")
        for kind, songs in kinds.items():
            if not songs:
                continue
            out = folder / kind.replace(" ", "_")
            out.mkdir(exist_ok=True)
            played = pairs(songs, out)
            before, after = agreement(played, 0.0), agreement(played, EARLY_SHARE)
            for group in after:
                print(f"{kind:<10} {len(songs):>5} {group:<12} {before[group][0]:>9.3f} {after[group][0]:>9.3f} "
                      f"{before[group][1]:>9.3f} {after[group][1]:>9.3f}")


if __name__ == "__main__":
    main()
