"""A music21 score -> MIDI bytes in its written form: every bar of the score a bar of the file.

``score.write('midi')`` would expand repeats (the labels of later stages are per written measure), put a pickup on
a false downbeat, and write 10,080 ticks per quarter. Here each piece keeps its written form, every bar of the
score is a bar of the file (a pickup or an incomplete bar gets a time signature of its own length, the real meter
comes back at the next full bar), and the resolution is 480 ticks per quarter unless a tuplet needs a finer one.
``bat.corpus.music21_corpus`` runs this over the bundled corpus.
"""

from __future__ import annotations

import copy
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

BASE_TICKS_PER_QUARTER = 480  # 2^5 * 3 * 5: exact for 128ths, triplets and quintuplets
MAX_TICKS_PER_QUARTER = 10080  # music21's own resolution: adds septuplets and nested triplets
_RESOLUTIONS = (480, 1440, 3360, 10080)  # the multiples of 480 that divide 10080
PRETTY_MIDI_MAX_TICK = 10_000_000  # pretty_midi refuses files with more ticks unless its MAX_TICK is raised
_MAX_DENOMINATOR = 64  # finest denominator tried for the time signature of an incomplete bar


class EmptyScoreError(Exception):
    """The score has no notes."""


class RepeatExpansionError(Exception):
    """Notes were written past the score's last bar: music21 expanded something we failed to strip."""


@dataclass(frozen=True)
class Bar:
    """A bar of the written score: where it starts and how long it is (quarters), and the meter it is in."""

    offset: Fraction
    length: Fraction
    meter: tuple[int, int] | None  # the time signature in force, e.g. (4, 4); None in an unmetered tune

    @property
    def full(self) -> bool:
        return self.meter is not None and self.length == _bar_length(self.meter)

    @property
    def written(self) -> tuple[int, int]:
        """The time signature that makes this bar exactly as long as it is (the pickup of 4/4 is 1/4).

        MIDI denominators are powers of two: a bar that no such signature fits (1/3 of a quarter, or music21's
        occasional 1/6 from an ABC tuplet) keeps the meter in force, or 4/4, and the downbeats after it drift.
        """
        meter = self.meter if self.meter and _power_of_two(self.meter[1]) else None
        if meter and self.full:
            return meter
        den = meter[1] if meter else 4
        while den <= _MAX_DENOMINATOR:
            num = self.length * den / 4
            if num.denominator == 1 and 1 <= num <= 255:
                return int(num), den
            den *= 2
        return meter or (4, 4)


def _bar_length(meter: tuple[int, int]) -> Fraction:
    return Fraction(4 * meter[0], meter[1])


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def score_to_midi(score, *, copy_score: bool = True) -> tuple[bytes, dict]:
    """MIDI bytes of the score in its written form, and the manifest fields that describe it.

    ``copy_score=False`` saves a deep copy (a third of the time) when the caller drops the score afterwards:
    the score is then stripped of its repeats and time signatures in place.
    """
    from music21 import defaults, meter
    from music21.midi import translate

    if copy_score:
        score = copy.deepcopy(score)
    _strip_repeats(score)
    if not score.recurse().notes:
        raise EmptyScoreError("the score has no notes")
    bars = bar_lines(score)
    flat = score.flatten()
    info = describe(score, bars, flat)
    tpq, exact = _ticks_per_quarter(score, bars, flat)
    exact = exact and all(b.length == _bar_length(b.written) for b in bars)  # else downbeats drift after it
    if bars:
        # The file's time signatures come from ``bars`` (_with_meters); music21's own would need a deep copy
        # first: Essen tunes share one TimeSignature object between measures and music21 refuses to write them.
        for s in score.recurse(streamsOnly=True, includeSelf=True):
            s.removeByClass(meter.TimeSignature)
    saved = defaults.ticksPerQuarter
    defaults.ticksPerQuarter = tpq  # music21 reads it at call time for every onset and duration
    try:
        midi_file = translate.streamToMidiFile(score, addEndDelay=False)
    finally:
        defaults.ticksPerQuarter = saved
    if bars:
        data, overhang = _with_meters(midi_file, bars, tpq)
        exact = exact and not overhang
    else:
        data = midi_file.writestr()
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
    """The written bars, from the part whose measures most often fill their meter.

    The parts of a score share their bar lines, except where one is mis-encoded (an ornament written as real
    notes overfills a bar of the first violin in Haydn's op. 1 no. 1): the part with the most full bars wins.
    """
    parts = list(score.parts) or [score]
    candidates = [_part_bars(part, score) for part in parts]
    return max(candidates, key=lambda bars: sum(b.full for b in bars))  # max keeps the first of equals


def _part_bars(part, score) -> list[Bar]:
    from music21 import meter, stream

    measures = list(part.getElementsByClass(stream.Measure))
    if not measures:
        return []
    first = measures[0].timeSignature or score.recurse().getElementsByClass(meter.TimeSignature).first()
    current = (first.numerator, first.denominator) if first is not None else None  # Essen's "M: none"
    end = Fraction(part.highestTime)
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


def describe(score, bars: Sequence[Bar], flat=None) -> dict:
    """Manifest fields read from the score: metadata, first full-bar meter, key, tempo, pickup."""
    from music21 import key, tempo

    flat = flat if flat is not None else score.flatten()
    md = score.metadata
    title = (md.title or md.movementName or "") if md is not None else ""
    if re.search(r"\.(mxl|xml|musicxml|krn|abc)$", title):
        title = ""  # music21 falls back to the file name
    full = next((b for b in bars if b.full), None)
    if full is not None:
        meter_name = f"{full.meter[0]}/{full.meter[1]}"
    else:  # no full bar anywhere: the written meter if there is one, "" for an unmetered tune
        ts = score.recurse().getElementsByClass("TimeSignature").first()
        meter_name = f"{ts.numerator}/{ts.denominator}" if ts is not None else ""
    first = bars[0] if bars else None
    pickup = 0
    if len(bars) > 1 and first.meter is not None and first.length < _bar_length(first.meter):
        pickup = first.length
    written_key = score.recurse().getElementsByClass(key.Key).first()
    if written_key is None:  # only a key signature (or nothing): Krumhansl-Schmuckler, ~50 ms for a chorale
        written_key = score.analyze("key")
    mark = flat.getElementsByClass(tempo.MetronomeMark).first()  # earliest; "playback only" marks count too
    qpm = mark.getQuarterBPM() if mark is not None else None
    return {
        "composer": (md.composer or "") if md is not None else "",
        "title": title,
        "time_signature": meter_name,
        "key": f"{written_key.tonic.name} {written_key.mode}",
        "n_parts": len(score.parts) or 1,
        "n_bars": len(bars),
        "pickup": float(pickup),
        "tempo_qpm": float(qpm) if qpm else 120.0,
    }


def _ticks_per_quarter(score, bars: Sequence[Bar], flat=None) -> tuple[int, bool]:
    """The resolution of the file, and whether every onset, duration and bar line is a whole tick in it.

    480 unless a tuplet needs finer (septuplets: 3360; music21's 10080 when nothing else is exact, e.g. a
    MusicXML that encodes triplets in 256ths), coarsened if needed so the file stays under pretty_midi's
    default MAX_TICK and readers need no workaround.
    """
    denominators = {b.offset.denominator for b in bars} | {b.length.denominator for b in bars}
    for el in (flat if flat is not None else score.flatten()).notesAndRests:
        denominators.add(Fraction(el.offset).denominator)
        denominators.add(Fraction(el.quarterLength).denominator)
    needed: int | None = BASE_TICKS_PER_QUARTER
    for d in denominators:
        needed = math.lcm(needed, d)
        if MAX_TICKS_PER_QUARTER % needed:
            needed = None
            break
    length = max([Fraction(score.highestTime)] + [b.offset + b.length for b in bars])
    tpq = needed or MAX_TICKS_PER_QUARTER
    while length * tpq >= PRETTY_MIDI_MAX_TICK and tpq > BASE_TICKS_PER_QUARTER:
        tpq = max(t for t in _RESOLUTIONS if t < tpq)
    return tpq, needed is not None and tpq % needed == 0


def _with_meters(midi_file, bars: Sequence[Bar], tpq: int) -> tuple[bytes, bool]:
    """The file's bytes with one time signature per change of written bar length, so bar lines are true, and
    whether notes overhang the last bar line.

    Only the conductor track (music21 always writes it first) is rebuilt; note tracks are written as music21
    made them. Refuses a file whose notes run more than a bar past the last bar line: repeats would have been
    expanded after all (a note may overhang a little: music21 merges some ties across voices).
    """
    import mido
    from music21.midi import DeltaTime

    end_tick = round((bars[-1].offset + bars[-1].length) * tpq)  # round, as music21 does for every event
    limit = end_tick + max(b.length for b in bars) * tpq
    notes_end = max(sum(e.time for e in track.events if isinstance(e, DeltaTime)) for track in midi_file.tracks)
    if notes_end > limit:
        raise RepeatExpansionError(f"notes run to tick {notes_end}, a bar past the last bar line (tick {end_tick})")
    header = midi_file.writeMThdStr()
    conductor = mido.MidiFile(file=io.BytesIO(header[:10] + b"\x00\x01" + header[12:]
                                              + midi_file.tracks[0].getBytes())).tracks[0]
    events, now = [], 0
    for msg in conductor:
        now += msg.time
        if msg.type not in ("time_signature", "end_of_track"):
            events.append((now, 1, msg))
    previous = None
    for b in bars:
        if b.written != previous:
            num, den = b.written
            signature = mido.MetaMessage("time_signature", numerator=num, denominator=den)
            events.append((round(b.offset * tpq), 0, signature))
            previous = b.written
    events.sort(key=lambda e: e[:2])  # a time signature first at its tick; the rest keep their order
    track, last = mido.MidiTrack(), 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    # A text event at the last bar line: pretty_midi ends the file at its last event, so without it a final
    # bar of rests would vanish (and with it the downbeats of a time signature written there).
    track.append(mido.MetaMessage("text", text="end", time=max(0, end_tick - last)))
    track.append(mido.MetaMessage("end_of_track", time=0))
    buffer = io.BytesIO()
    mido.MidiFile(type=1, ticks_per_beat=tpq, tracks=[track]).save(file=buffer)
    conductor_bytes = buffer.getvalue()[14:]  # drop mido's header, keep the MTrk chunk
    return header + conductor_bytes + b"".join(t.getBytes() for t in midi_file.tracks[1:]), notes_end > end_tick
