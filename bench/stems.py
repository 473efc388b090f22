"""What stems buy over the mix: beats, bars and transcription of humanized pop songs, from their mix and from their parts.

    .venv/bin/python bench/stems.py [--songs 6] [--bars 32] [--seed 0]

Each song is a pop-style multitrack file (``pop_midi.pop_song``: 16th hats, kick and snare, bass in 8ths, chords,
a melody, a pad), humanized as in bench/beats.py (tempo drift, onset jitter, velocity noise), and rendered with
FluidSynth once whole (the mix) and once per part, named as a source separator names them (drums, bass, piano,
vocals, pad). Then, as ``bat featurize`` does:

- mix: the mix as one audio file (``load_audio``: basic-pitch on the mix; ``track_audio``);
- stems: the folder of parts (``load_stems``: each part transcribed alone, the drums by ``drum_audio``; beats on the
  mix).

Printed per way: beat and downbeat F-measure (mir_eval, ±70 ms) against the performed grid; the pitched notes'
transcription F1 (mir_eval, onset within 50 ms and pitch within 50 cents, offsets ignored), and for stems the drum
hits' onset F1 per kind (kick, snare, closed hi-hat; ±50 ms); seconds of computing per minute of music.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from beats import f_measure, render  # noqa: E402
from pop_midi import pop_song  # noqa: E402

from bat.beats.tracking import track_audio  # noqa: E402
from bat.featurize import read_song  # noqa: E402
from bat.ingest.audio import load_audio  # noqa: E402
from bat.ingest.song import NoteArray  # noqa: E402
from bat.ingest.stems import load_stems  # noqa: E402
from tests.beats.performed import humanize  # noqa: E402

warnings.filterwarnings("ignore")
PART_NAMES = ("drums", "bass", "piano", "vocals", "pad")  # pop_song's instruments, in order
DRUM_KINDS = {"kick": 36, "snare": 38, "hi-hat": 42}


def note_f1(reference: list, estimate: NoteArray) -> float:
    import mir_eval

    if not reference or len(estimate) == 0:
        return 0.0
    ref_intervals = np.array([[n.start, n.end] for n in reference])
    ref_pitches = mir_eval.util.midi_to_hz(np.array([n.pitch for n in reference], float))
    est_intervals = np.stack([estimate.start, estimate.end], axis=1)
    est_pitches = mir_eval.util.midi_to_hz(estimate.pitch.astype(float))
    return float(mir_eval.transcription.precision_recall_f1_overlap(
        ref_intervals, ref_pitches, est_intervals, est_pitches, offset_ratio=None)[2])


def drum_f1(reference: list, estimate: NoteArray, key: int) -> float:
    import mir_eval

    truth = np.array(sorted(n.start for n in reference if n.pitch == key))
    return float(mir_eval.onset.f_measure(truth, estimate.start[estimate.pitch == key], window=0.05)[0])


def render_song(seed: int, bars: int, folder: Path):
    """The humanized performance, its mix WAV and its folder of part WAVs."""
    quantized = folder / f"pop_{seed}.mid"
    score = pop_song(seed, bars=bars)
    score.write(str(quantized))
    performance = humanize(quantized, seed=seed)
    played = folder / f"played_{seed}.mid"
    performance.midi.write(str(played))
    mix = folder / f"mix_{seed}.wav"
    stems = folder / f"stems_{seed}"
    stems.mkdir()
    ok = render(played, mix)
    for name, instrument in zip(PART_NAMES, _in_score_order(score.instruments, performance.midi.instruments)):
        part = copy.deepcopy(performance.midi)
        part.instruments = [instrument]
        part.write(str(stems / f"{name}.mid"))
        ok = ok and render(stems / f"{name}.mid", stems / f"{name}.wav")
        (stems / f"{name}.mid").unlink()
    return performance, mix, stems, ok


def _in_score_order(written: list, performed: list) -> list:
    """The performed instruments in the order of the score's (the performance writes drums last)."""
    left, ordered = list(performed), []
    for instrument in written:
        match = next(p for p in left if (p.is_drum, p.program) == (instrument.is_drum, instrument.program))
        left.remove(match)
        ordered.append(match)
    return ordered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=6)
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows: dict[str, list[dict]] = {"mix": [], "stems": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seed, args.seed + args.songs):
            performance, mix, stems, ok = render_song(seed, args.bars, Path(tmp))
            if not ok:
                print(f"song {seed}: FluidSynth failed, skipped", file=sys.stderr)
                continue
            pitched = [n for i in performance.midi.instruments if not i.is_drum for n in i.notes]
            drums = [n for i in performance.midi.instruments if i.is_drum for n in i.notes]
            for way in rows:
                started = time.perf_counter()
                if way == "mix":
                    song, samples, rate = load_audio(str(mix), mix.read_bytes())
                else:
                    song, samples, rate = load_stems(str(stems), read_song(str(stems)))
                tracked = track_audio(samples, rate, song)
                seconds = time.perf_counter() - started
                row = {
                    "beat F": f_measure(performance.beats, tracked.times),
                    "downbeat F": f_measure(performance.downbeats, tracked.times[tracked.beat_in_bar == 0]),
                    "notes F1": note_f1(pitched, song.notes),
                    "s/min": seconds / (samples.size / rate / 60.0),
                }
                if way == "stems":
                    row.update({f"{kind} F1": drum_f1(drums, song.drums, key) for kind, key in DRUM_KINDS.items()})
                rows[way].append(row)
                print(f"song {seed} {way}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), file=sys.stderr)
    columns = ["beat F", "downbeat F", "notes F1", *(f"{k} F1" for k in DRUM_KINDS), "s/min"]
    print(f"\n{'way':<6} {'songs':>5} " + " ".join(f"{c:>11}" for c in columns))
    for way, found in rows.items():
        cells = [f"{np.mean([r[c] for r in found]):>11.3f}" if found and c in found[0] else f"{'-':>11}" for c in columns]
        print(f"{way:<6} {len(found):>5} " + " ".join(cells))
    if rows["mix"] and rows["stems"]:
        ratio = np.mean([r["notes F1"] for r in rows["stems"]]) / max(np.mean([r["notes F1"] for r in rows["mix"]]), 1e-9)
        print(f"notes F1, stems / mix: {ratio:.2f}x")


if __name__ == "__main__":
    main()
