"""How well bat finds beats and downbeats where the tempo map cannot be trusted: MIDI performances and audio.

    .venv/bin/python bench/beats.py [--demo data/demo-corpus] [--pop 20] [--audio 4] [--seed 0]
        [--kinds "folk song,fiddle tune"] [--truth score|tempo_map] [--audio-only] [--by-meter]

    # tunes drawn at random from the whole folk and fiddle collections, none in the demo corpus or in the
    # tracker's fitting sample (bench/tune_sample.py): what to expect on a typical tune
    .venv/bin/python bench/tune_sample.py data/tune-sample
    .venv/bin/python bench/beats.py --demo data/tune-sample --pop 0 --audio 0 --by-meter

1. Humanized performances. Quantized corpus MIDI (the demo corpus: chorales, Essen folk songs, fiddle
   tunes, Renaissance polyphony...; and pop-style multitrack files from ``pop_midi.pop_song``) is played
   back with a smooth tempo drift (±15%, times a global factor 0.8-1.25), ±25 ms onset jitter and velocity
   noise (tests/beats/performed.py), written at 120 qpm with no meter. bat's performance tracker
   (``track_notes``: onset activation from the notes, madmom's DBN, level and bar choice) recovers the
   grid; beat and downbeat F-measure (mir_eval, ±70 ms) are scored against the warped true grid. The true
   grid is the score's (tests/beats/truth.py): pretty_midi's beat convention (the denominator's note, the
   dotted note in 6/8, 9/8, 12/8) in every full bar, while the partial bars music21 writes as bars of their
   own meter (a jig's 1/8 pickup and 5/8 repeat-cut bar) carry on the beat around them. ``--truth tempo_map``
   scores against pretty_midi's grid as it is, which beats such bars in eighths or sixteenths.
2. Audio. ``--audio`` pieces of each kind, and three named scores (a chorale, Maple Leaf Rag, a Mozart
   quartet movement, rendered from their quantized MIDI), are rendered with FluidSynth (under a timeout)
   and tracked: bat on the MIDI notes; bat on the audio (``track_audio``: madmom's RNN beat activation, with
   a single line's transcribed notes, ``audio_beat_activation``; bars from the basic-pitch transcription and
   madmom's downbeat RNN together, ``bat.beats.audio_bars``),
   and the same with bars from the transcription alone (as before audio_bars); and madmom alone
   (RNNDownBeatProcessor + DBNDownBeatTrackingProcessor, 3 or 4 beats a bar). The transcription is scored
   by onset-only F1; one line per audio file goes to stderr. ``--audio-only`` skips the files not rendered.
Beat F-measure is the target; mir_eval's AMLt (continuity at any allowed metrical level) is shown next to
it for information, since it forgives the double/half-tempo and off-beat errors F counts.
A second table splits what each kind loses of downbeat F (``downbeat_error``) by where it went wrong: the beats
themselves, the bar length (bars of two beats for bars of four: often how the collection writes the same
rhythm, a reel as 2/4, 4/4 or 2/2), or the phase (the right bars, started on the wrong beat).
Times are seconds of computing per minute of music, on this machine. ``--by-meter`` adds a row per kind and
written meter (the manifest's ``time_signature``): the demo corpus takes Essen tunes evenly per meter, so
its folk rows weigh rare meters (3/8, 5/8, 6/4, 2/2, whose written beat is a notation choice at the
corpus's quarter = 120) far more than the collection does.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pretty_midi  # noqa: E402

from bat.beats.audio_bars import downbeat_activation  # noqa: E402
from bat.beats.tracking import audio_beat_activation, track_activation, track_notes  # noqa: E402
from bat.ingest.audio import load_audio  # noqa: E402
from bat.ingest.midi import load_midi  # noqa: E402
from bat.corpus.manifest import read_manifest  # noqa: E402
from bat.ingest.sources import expand_inputs  # noqa: E402
from pop_midi import pop_song  # noqa: E402
from tests.beats.performed import HumanizeConfig, humanize  # noqa: E402

pretty_midi.pretty_midi.MAX_TICK = 1e10  # music21 writes 10,080 ticks per quarter
warnings.filterwarnings("ignore")

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
KINDS = {"bach": "chorale", "essenFolksong": "folk song", "oneills1850": "fiddle tune", "ryansMammoth": "fiddle tune",
         "airdsAirs": "fiddle tune", "palestrina": "polyphony"}
NAMED = {"chorale": "bach/bwv1.6", "ragtime": "joplin/maple_leaf_rag", "quartet": "mozart/k80/movement3"}


def kind_of(path: str) -> str:
    if Path(path).name.startswith("pop_"):
        return "pop"
    return KINDS.get(Path(path).parent.name, "other")


def f_measure(reference, estimate) -> float:
    import mir_eval

    if len(reference) < 2 or len(estimate) < 2:
        return 0.0
    return float(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(np.asarray(reference)), mir_eval.beat.trim_beats(np.asarray(estimate))))


def render(midi: Path, wav: Path) -> bool:
    command = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", "22050", "-F", str(wav), SOUNDFONT, str(midi)]
    try:
        subprocess.run(command, check=True, timeout=120, capture_output=True)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        return False
    return wav.exists() and wav.stat().st_size > 1000


def madmom_alone(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: madmom's own joint beat/downbeat RNN and DBN (3 or 4 beats a bar)."""
    import soxr
    from madmom.audio.signal import Signal
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    audio = soxr.resample(samples, rate, 44100).astype(np.float32)
    activation = RNNDownBeatProcessor()(Signal(audio, sample_rate=44100, num_channels=1))
    result = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)(activation)
    return result[:, 0], result[result[:, 1] == 1, 0]


def aml_t(reference, estimate) -> float:
    """mir_eval's AMLt: the share of beats in correct runs, allowing double/half tempo and the off-beat. Shown for
    information next to F-measure (the targets are on F): it forgives exactly the level errors bat works to avoid."""
    import mir_eval

    if len(reference) < 2 or len(estimate) < 2:
        return 0.0
    return float(mir_eval.beat.continuity(mir_eval.beat.trim_beats(np.asarray(reference)), mir_eval.beat.trim_beats(np.asarray(estimate)))[3])


def onset_f1(reference: np.ndarray, estimate: np.ndarray) -> float:
    import mir_eval

    return float(mir_eval.onset.f_measure(np.unique(np.round(reference, 3)), np.unique(np.round(estimate, 3)))[0])


class Table:
    """Scores and times per (section, kind), printed as rows of means."""

    def __init__(self):
        self.rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def add(self, section: str, kind: str, **values: float) -> None:
        for name, value in values.items():
            if not np.isnan(value):
                self.rows[(section, kind)][name].append(value)

    def print(self) -> None:
        print(f"\n{'method':<44}{'kind':<13}{'n':>4}{'beat F':>8}{'down F':>8}{'AMLt*':>8}{'onset F1':>9}{'s/min':>7}")
        for (section, kind), values in sorted(self.rows.items()):
            n = len(values["seconds"])
            mean = lambda name: f"{np.mean(values[name]):.3f}" if values.get(name) else "-"  # noqa: E731
            per_minute = 60 * np.sum(values["seconds"]) / max(np.sum(values["duration"]), 1e-9)
            print(f"{section:<44}{kind:<13}{n:>4}{mean('beat'):>8}{mean('down'):>8}{mean('amlt'):>8}{mean('onset'):>9}{per_minute:>7.2f}")
        print("* AMLt: mir_eval beat continuity at any allowed metrical level (double/half tempo, off-beat), for "
              "information only; the targets are on beat and downbeat F-measure.")


ERRORS = ("right", "beats", "bar length", "phase")


def downbeat_error(beat_f: float, down_f: float, downbeats: np.ndarray, tracked_downbeats: np.ndarray) -> str:
    """Where a song's downbeats (F-measure ``down_f``; its beats', ``beat_f``) went wrong, the first that applies:
    ``"right"`` (downbeat F at least 0.8), ``"beats"`` (beat F under 0.8: another metrical level or the off-beat,
    which no bar choice can mend), ``"bar length"`` (the right beats grouped in bars more than 12% longer or
    shorter than the true ones), ``"phase"`` (the right beats and bar length, the downbeats on another beat)."""
    if down_f >= 0.8:
        return "right"
    if beat_f < 0.8:
        return "beats"
    if len(downbeats) < 2 or len(tracked_downbeats) < 2:
        return "bar length"
    ratio = float(np.median(np.diff(tracked_downbeats)) / np.median(np.diff(downbeats)))
    return "bar length" if abs(np.log(ratio)) > np.log(1.12) else "phase"


class ErrorTable:
    """Per kind, the downbeat F lost to each of ``ERRORS``: they add up to one minus the mean downbeat F."""

    def __init__(self):
        self.songs: dict[str, list[tuple[str, float]]] = defaultdict(list)

    def add(self, kind: str, error: str, down_f: float) -> None:
        self.songs[kind].append((error, down_f))

    def print(self) -> None:
        print(f"\n{'downbeat F lost to (share of songs)':<44}{'kind':<13}{'n':>4}{'down F':>8}" + "".join(f"{name:>16}" for name in ERRORS))
        for kind, songs in sorted(self.songs.items()):
            n = len(songs)
            cells = ""
            for name in ERRORS:
                lost = sum(1.0 - down_f for error, down_f in songs if error == name) / n
                cells += f"{lost:>9.3f} ({sum(error == name for error, _ in songs) / n:.0%})".rjust(16)
            print(f"{'humanized: bat on notes':<44}{kind:<13}{n:>4}{np.mean([f for _, f in songs]):>8.3f}{cells}")


def corpus(demo: Path | None, pops: int, folder: Path, seed: int) -> list[str]:
    if demo is None:
        from bat.corpus.demo import build_demo_corpus

        demo = Path(build_demo_corpus(ROOT / "data" / "demo-corpus"))
    files = expand_inputs([str(demo / "manifest.csv" if demo.is_dir() else demo)])
    for k in range(pops):
        path = folder / f"pop_{seed + k:05d}.mid"
        pop_song(seed + k, bars=48).write(str(path))
        files.append(str(path))
    return files


def written_meters(demo: Path) -> dict[str, str]:
    """MIDI path -> the manifest's written meter (of the first full bar), for ``--by-meter``."""
    manifest = read_manifest(demo)
    root = (demo if demo.is_dir() else demo.parent).resolve()
    return {str(root / row.path): row.time_signature or "none" for row in manifest.itertuples()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=None, help="a demo corpus folder or manifest (built if omitted)")
    parser.add_argument("--pop", type=int, default=20, help="pop-style files to generate")
    parser.add_argument("--audio", type=int, default=3, help="pieces of each kind to render and track as audio")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=None, help="comma-separated kinds to run (chorale, folk song, fiddle tune, pop...)")
    parser.add_argument("--truth", choices=("score", "tempo_map"), default="score", help="the true grid, see above")
    parser.add_argument("--audio-only", action="store_true", help="track only the files rendered as audio (a quick audio run)")
    parser.add_argument("--by-meter", action="store_true", help="also a row per kind and written meter")
    args = parser.parse_args()
    kinds = set(args.kinds.split(",")) if args.kinds else None
    table, errors = Table(), ErrorTable()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = corpus(args.demo, args.pop, folder, args.seed)
        meters = written_meters(args.demo or ROOT / "data" / "demo-corpus") if args.by_meter else {}
        rendered: dict[str, int] = defaultdict(int)
        for index, source in enumerate(files):
            kind = kind_of(source)
            if kinds is not None and kind not in kinds:
                continue
            named = next((name for name, stem in NAMED.items() if source.endswith(stem + ".mid")), None)
            to_render = bool(shutil.which("fluidsynth")) and (rendered[kind] < args.audio or named is not None)
            if args.audio_only and not to_render:
                continue
            performance = humanize(source, seed=args.seed + index, truth=args.truth)
            played = folder / f"played_{index}.mid"
            performance.midi.write(str(played))
            song = load_midi(played)
            if not args.audio_only:
                started = time.perf_counter()
                tracked = track_notes(song)
                seconds = time.perf_counter() - started
                beat_f, down_f = f_measure(performance.beats, tracked.times), f_measure(performance.downbeats, downbeats_of(tracked))
                amlt = aml_t(performance.beats, tracked.times)
                error = downbeat_error(beat_f, down_f, performance.downbeats, downbeats_of(tracked))
                for group in (kind, "all"):
                    table.add("humanized: bat on notes", group, beat=beat_f, down=down_f, amlt=amlt, seconds=seconds, duration=song.end_time)
                    errors.add(group, error, down_f)
                if args.by_meter:
                    meter = meters.get(str(Path(source).resolve()), "generated")
                    table.add(f"humanized: bat on notes, written {meter}", kind, beat=beat_f, down=down_f, amlt=amlt,
                              seconds=seconds, duration=song.end_time)
            if to_render:
                rendered[kind] += 1
                audio_bench(table, kind, played, performance.beats, performance.downbeats, song, folder / f"played_{index}.wav", "humanized",
                            f"{Path(source).parent.name}/{Path(source).stem}")
                if named:
                    score_bench(table, named, source, folder / f"score_{index}.mid", args.truth)
            print(f"\r{index + 1}/{len(files)} files", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    table.print()
    if errors.songs:
        errors.print()


def score_bench(table: Table, name: str, source: str, copy: Path, truth: str = "score") -> None:
    """A quantized score rendered as it is written. FluidSynth 2.3.1 hangs on music21's 10,080-tick files,
    so the notes are copied first into a 960-tick file (humanize with every deviation at zero)."""
    exact = humanize(source, config=HumanizeConfig(drift=0.0, tempo_range=(1.0, 1.0), jitter=0.0, velocity_noise=0), truth=truth)
    exact.midi.write(str(copy))
    audio_bench(table, name, copy, exact.beats, exact.downbeats, load_midi(copy), copy.with_suffix(".wav"), "score", Path(source).stem)


def downbeats_of(tracked) -> np.ndarray:
    return tracked.times[tracked.beat_in_bar == 0]


def audio_bench(table: Table, kind: str, midi: Path, beats, downbeats, song, wav: Path, what: str, name: str = "") -> None:
    """One rendered file, tracked on its notes, on its audio by bat (bars from the notes and madmom's downbeat
    RNN together, and from the transcribed notes alone as before), and by madmom alone."""
    if not render(midi, wav):
        print(f"\nfluidsynth failed or timed out on {midi}", file=sys.stderr)
        return
    duration = song.end_time

    def add(section: str, tracked_times, tracked_downbeats, seconds: float, **more) -> tuple[float, float, float]:
        scores = f_measure(beats, tracked_times), f_measure(downbeats, tracked_downbeats), aml_t(beats, tracked_times)
        table.add(f"{what}: {section}", kind, beat=scores[0], down=scores[1], amlt=scores[2], seconds=seconds, duration=duration, **more)
        return scores

    started = time.perf_counter()
    tracked = track_notes(song)
    add("bat on notes (same files)", tracked.times, downbeats_of(tracked), time.perf_counter() - started)
    started = time.perf_counter()
    audio_song, samples, rate = load_audio(str(wav), wav.read_bytes())
    transcribed = time.perf_counter()
    activation, trust_madmom = audio_beat_activation(samples, rate, audio_song)
    beat_rnn = time.perf_counter()
    notes_only = track_activation(activation, audio_song, "madmom_audio", trust_madmom=trust_madmom)
    tracked_notes_only = time.perf_counter()
    madmom_downbeats = downbeat_activation(samples, rate)
    tracked = track_activation(activation, audio_song, "madmom_audio", trust_madmom=trust_madmom, audio_downbeats=madmom_downbeats)
    finished = time.perf_counter()
    onset = onset_f1(np.concatenate([song.notes.start, song.drums.start]), audio_song.notes.start)
    add("bat on audio, bars: notes only", notes_only.times, downbeats_of(notes_only), tracked_notes_only - started, onset=onset)
    audio_seconds = finished - started - (tracked_notes_only - beat_rnn)  # the notes-only tracking is not part of it
    scores = add("bat on audio, bars: notes+madmom", tracked.times, downbeats_of(tracked), audio_seconds, onset=onset)
    table.add(f"{what}: transcription only", kind, seconds=transcribed - started, duration=duration)
    started = time.perf_counter()
    alone_beats, alone_downbeats = madmom_alone(samples, rate)
    add("madmom alone (audio)", alone_beats, alone_downbeats, time.perf_counter() - started)
    print(f"\n  {what} {name} ({kind}, {duration / 60:.1f} min): beat F {scores[0]:.3f} down F {scores[1]:.3f} "
          f"(notes only {f_measure(downbeats, downbeats_of(notes_only)):.3f}) AMLt {scores[2]:.3f} "
          f"downbeats={tracked.downbeats_by} {60 * audio_seconds / duration:.1f} s/min", file=sys.stderr)


if __name__ == "__main__":
    main()
