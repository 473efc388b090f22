"""Synthetic corpora that look like the Lakh MIDI Dataset: multitrack songs and a share of corrupt files.

Each song has drums, bass, chords and a melody (often a pad or an arpeggio too) in a random key, at a tempo
between 68 and 172 qpm that sometimes changes, in 4/4 mostly but also 3/4, 6/8, 2/4, 12/8, 5/4 or 7/8, with
the occasional meter change between sections; ticks per quarter vary as they do in real files. Every file is
a pure function of (seed, index), so a corpus is reproducible and every file's content is distinct. Files
are written as raw SMF bytes (no pretty_midi), so generating 20,000 songs takes a minute or two per core.

The corrupt share mimics what a big scraped corpus holds; each kind has the failure category bat records::

    garbage    random bytes                          -> parse
    truncated  a song cut inside its first note track -> parse
    no_notes   a valid file whose tracks hold no notes -> empty
    empty      0 bytes                               -> empty

Used by bench/corpus_scale.py and tests/flows. To write a corpus by hand::

    .venv/bin/python tests/synthetic_corpus.py --files 2000 --out data/synthetic --tar data/synthetic.tar.gz
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import struct
import tarfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CORRUPTIONS = {"garbage": "parse", "truncated": "parse", "no_notes": "empty", "empty": "empty"}
METERS = [((4, 4), 0.70), ((3, 4), 0.10), ((6, 8), 0.07), ((2, 4), 0.04), ((12, 8), 0.03), ((5, 4), 0.03),
          ((7, 8), 0.03)]
PROGRESSIONS = [(0, 4, 5, 3), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 4, 4), (5, 3, 0, 4), (0, 0, 3, 4), (0, 6, 5, 4)]
MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
KICK, SNARE, HAT, OPEN_HAT, CRASH, TOMS = 36, 38, 42, 46, 49, (41, 45, 48)


@dataclass(frozen=True)
class CorpusSpec:
    """What to generate. Defaults give Lakh-sized songs; tests use a few bars to stay fast."""

    files: int = 1000
    corrupt_share: float = 0.02  # Lakh: a few thousand of its 176k files do not parse or hold no notes
    min_bars: int = 32  # 32..112 bars: one to four minutes, ~1,000-6,000 notes
    max_bars: int = 112
    seed: int = 0


@dataclass(frozen=True)
class CorpusFile:
    """One generated file: its path relative to the corpus root, what it is, and what bat should make of it."""

    path: str
    kind: str  # "song" or a key of CORRUPTIONS
    expected: str  # "ok" or the failure category bat records
    content_hash: str  # sha256 of the bytes, as the store keys songs


# --- writing SMF bytes ------------------------------------------------------------------------------------


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def _track(events: list[tuple[int, int, bytes]]) -> bytes:
    """An MTrk chunk from (tick, order, message) events; order puts note-offs before note-ons at a tick."""
    events.sort(key=lambda e: (e[0], e[1]))
    body, last = bytearray(), 0
    for tick, _, message in events:
        body += _varlen(tick - last) + message
        last = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _meta(kind: int, payload: bytes) -> bytes:
    return bytes([0xFF, kind]) + _varlen(len(payload)) + payload


def _smf(tpq: int, tracks: list[bytes]) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), tpq) + b"".join(tracks)


class _Part:
    """One instrument's notes on one channel, collected as (tick, order, message) events."""

    def __init__(self, name: str, channel: int, program: int | None):
        self.channel, self.events = channel, [(0, 0, _meta(0x03, name.encode()))]
        if program is not None:
            self.events.append((0, 1, bytes([0xC0 | channel, program])))

    def note(self, tick: int, length: int, pitch: int, velocity: int) -> None:
        if 0 <= pitch < 128 and length > 0:
            self.events.append((tick, 3, bytes([0x90 | self.channel, pitch, velocity])))
            self.events.append((tick + length, 2, bytes([0x80 | self.channel, pitch, 0])))


# --- composing a song -------------------------------------------------------------------------------------


def song_midi(rng: random.Random, min_bars: int = 32, max_bars: int = 112) -> bytes:
    """A multitrack song: conductor track, then drums, bass, chords, melody and maybe a pad and an arpeggio."""
    tpq = rng.choice([96, 120, 192, 240, 384, 480, 960])
    meters = [m for m, _ in METERS]
    first = rng.choices(meters, weights=[w for _, w in METERS])[0]
    n_bars = rng.randint(min_bars, max_bars)
    key, scale = rng.randrange(12), (MINOR if rng.random() < 0.35 else MAJOR)
    progression = rng.choice(PROGRESSIONS)
    qpm = rng.uniform(68, 172)
    conductor = [(0, 0, _meta(0x03, b"conductor")), (0, 1, _meta(0x59, bytes([0, 1 if scale is MINOR else 0])))]
    if rng.random() > 0.04:  # a few files carry no tempo at all (bat then assumes 120 qpm)
        conductor.append((0, 1, _meta(0x51, int(60e6 / qpm).to_bytes(3, "big"))))

    drums, bass = _Part("drums", 9, None), _Part("bass", 1, rng.randrange(32, 40))
    chords = _Part("chords", 2, rng.choice([0, 1, 4, 16, 24, 25, 48]))
    melody = _Part("melody", 3, rng.choice([56, 65, 66, 71, 73, 80, 81, 52]))
    pad = _Part("pad", 4, rng.choice([48, 49, 50, 89, 91])) if rng.random() < 0.5 else None
    arp = _Part("arpeggio", 5, rng.choice([24, 25, 46, 11])) if rng.random() < 0.4 else None
    has_drums = rng.random() < 0.9
    meter_change_at = rng.randrange(2, 6) * 8 if rng.random() < 0.06 else -1

    tick, meter, pitch = 0, first, 60 + key + 12 * rng.randrange(2)
    for bar in range(n_bars):
        if bar == 0 or bar == meter_change_at:
            meter = first if bar == 0 else rng.choice(meters)
            conductor.append((tick, 1, _meta(0x58, bytes([meter[0], meter[1].bit_length() - 1, 24, 8]))))
        if bar and bar % 16 == 0 and rng.random() < 0.25:  # a new section at a new tempo
            qpm = min(200.0, max(50.0, qpm * rng.uniform(0.85, 1.15)))
            conductor.append((tick, 1, _meta(0x51, int(60e6 / qpm).to_bytes(3, "big"))))
        num, den = meter
        bar_ticks = num * tpq * 4 // den
        compound = den == 8 and num % 3 == 0
        pulse = tpq * 3 // 2 if compound else tpq * 4 // den  # the beat a listener taps
        pulses = bar_ticks // pulse
        degree = progression[bar % len(progression)]
        root = key + scale[degree]
        triad = [root + (scale[(degree + k) % 7] - scale[degree]) % 12 for k in (0, 2, 4)]
        velocity = lambda base: min(127, max(1, base + rng.randint(-12, 12)))  # noqa: E731

        if has_drums:
            if bar % 8 == 0:
                drums.note(tick, tpq // 4, CRASH, velocity(100))
            for k in range(pulses):
                at = tick + k * pulse
                drums.note(at, tpq // 8, KICK if k % 2 == 0 else SNARE, velocity(96))
                for half in range(2):
                    drums.note(at + half * pulse // 2, tpq // 8, OPEN_HAT if (bar + k) % 7 == 6 else HAT, velocity(70))
            if bar % 8 == 7:  # a fill into the next section
                for k, tom in enumerate(TOMS):
                    drums.note(tick + bar_ticks - (3 - k) * pulse // 3, tpq // 8, tom, velocity(100))
        for k in range(pulses):
            step = pulse // 2 if rng.random() < 0.5 else pulse
            for at in range(tick + k * pulse, tick + (k + 1) * pulse, step):
                octave = 12 if rng.random() < 0.15 else 0
                bass.note(at, step * 9 // 10, 36 + root % 12 + octave, velocity(90))
        voicing = [48 + (n - key) % 12 + key % 12 + (12 if n % 12 < key % 12 else 0) for n in triad]
        chord_rhythm = [0] if rng.random() < 0.4 else list(range(0, bar_ticks, pulse))
        for at in chord_rhythm:
            length = (bar_ticks if len(chord_rhythm) == 1 else pulse) - tpq // 16
            for note in voicing + ([voicing[0] + 12] if rng.random() < 0.3 else []):
                chords.note(tick + at, length, note, velocity(72))
        if pad is not None:
            for note in voicing[:2]:
                pad.note(tick, bar_ticks, note - 12, velocity(55))
        if arp is not None:
            sixteenth = max(1, tpq // 4)
            for k, at in enumerate(range(tick, tick + bar_ticks, sixteenth)):
                arp.note(at, sixteenth, voicing[k % 3] + 12, velocity(60))
        if bar % 4 != 3 or rng.random() < 0.5:  # the melody breathes at phrase ends
            at = tick
            while at < tick + bar_ticks:
                length = rng.choice([tpq // 2, tpq, tpq, tpq * 3 // 2, tpq * 2])
                if rng.random() < 0.85:
                    pitch = min(84, max(60, pitch + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3, 5, -4])))
                    in_scale = min(scale, key=lambda s: abs((pitch - key - s) % 12))
                    melody.note(at, min(length, tick + bar_ticks - at), pitch - (pitch - key - in_scale) % 12,
                                velocity(88))
                at += length
        tick += bar_ticks

    tracks = [_track(conductor)] + [_track(p.events) for p in (drums if has_drums else None, bass, chords, melody,
                                                               pad, arp) if p is not None]
    return _smf(tpq, tracks)


def corrupt_midi(rng: random.Random, kind: str) -> bytes:
    """A broken file of the given kind (a key of CORRUPTIONS)."""
    if kind == "garbage":
        return rng.randbytes(rng.randint(64, 4096))
    if kind == "truncated":
        song = song_midi(rng, 8, 16)
        first_notes = song.index(b"MTrk", song.index(b"MTrk") + 4)  # the track after the conductor
        return song[: first_notes + 8 + rng.randint(20, 200)]
    if kind == "no_notes":
        name = rng.randbytes(8).hex().encode()
        return _smf(480, [_track([(0, 0, _meta(0x03, name)), (0, 1, _meta(0x51, (500000).to_bytes(3, "big")))]),
                          _track([(0, 0, _meta(0x03, b"silence " + name))])])
    if kind == "empty":
        return b""
    raise ValueError(f"unknown corruption {kind!r}; pick one of {sorted(CORRUPTIONS)}")


def file_bytes(spec: CorpusSpec, index: int) -> tuple[str, bytes]:
    """The ``index``-th file of the corpus: (kind, bytes)."""
    rng = random.Random(spec.seed * 1_000_003 + index)
    if rng.random() < spec.corrupt_share:
        kind = rng.choice(list(CORRUPTIONS))
        if kind == "empty" and index % 4:  # 0-byte files all hash alike: keep them rare
            kind = "garbage"
        return kind, corrupt_midi(rng, kind)
    return "song", song_midi(rng, spec.min_bars, spec.max_bars)


def _write_range(root: str, spec: CorpusSpec, start: int, stop: int) -> list[CorpusFile]:
    out = []
    for index in range(start, stop):
        kind, data = file_bytes(spec, index)
        digest = hashlib.sha256(data).hexdigest()
        name = hashlib.md5(data + index.to_bytes(8, "big")).hexdigest()  # Lakh names files by an md5
        path = Path(root) / name[0] / f"{name}.mid"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(CorpusFile(str(path.relative_to(root)), kind, CORRUPTIONS.get(kind, "ok"), digest))
    return out


def write_corpus(root: str | os.PathLike, spec: CorpusSpec, processes: int = 1) -> list[CorpusFile]:
    """Write ``spec.files`` files under ``root`` in Lakh's layout (``<x>/<md5>.mid``); returns them in order."""
    root = str(root)
    Path(root).mkdir(parents=True, exist_ok=True)
    if processes <= 1 or spec.files < 200:
        return _write_range(root, spec, 0, spec.files)
    bounds = [spec.files * k // (processes * 4) for k in range(processes * 4 + 1)]
    with ProcessPoolExecutor(processes) as pool:
        chunks = pool.map(_write_range, [root] * (len(bounds) - 1), [spec] * (len(bounds) - 1), bounds[:-1], bounds[1:])
        return [f for chunk in chunks for f in chunk]


def write_tar_gz(root: str | os.PathLike, files: list[CorpusFile], archive: str | os.PathLike,
                 prefix: str = "lmd_full") -> str:
    """Pack the corpus as a .tar.gz the way LMD ships (``lmd_full/<x>/<md5>.mid``), plus a README member."""
    with tarfile.open(archive, "w:gz") as tar:
        readme = b"synthetic corpus written by tests/synthetic_corpus.py\n"
        info = tarfile.TarInfo(f"{prefix}/README.txt")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
        for f in files:
            tar.add(Path(root) / f.path, arcname=f"{prefix}/{f.path}")
    return str(archive)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic Lakh-like MIDI corpus.")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tar", help="also pack it as this .tar.gz")
    parser.add_argument("--corrupt-share", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    spec = CorpusSpec(files=args.files, corrupt_share=args.corrupt_share, seed=args.seed)
    files = write_corpus(args.out, spec, processes=args.processes)
    if args.tar:
        write_tar_gz(args.out, files, args.tar)
    kinds = {k: sum(f.kind == k for f in files) for k in ["song", *CORRUPTIONS]}
    print(f"{len(files)} files under {args.out}: {kinds}")


if __name__ == "__main__":
    main()
