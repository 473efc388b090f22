"""Bars over tracked beats: which beats are downbeats, from per-beat evidence and the rhythm's repetition.

Every bar length (2, 3, 4 beats) and phase is a hypothesis for the whole song (one meter, like madmom's bar
tracker with its tiny meter-change probability; a pickup is just a phase), scored by templates of per-beat
evidence (bass onsets, harmonic change, long notes, onset count, kicks: ``downbeat_evidence``), by how well
the rhythm of one bar repeats in the next (``bar_repetition``: the strongest cue for triple against duple
meter in a plain melody), and by priors on the bar length and on how a song starts and ends (``BarCues``,
weighed by ``BarWeights``).

A single line (``is_melody``) has its own weights (``MELODY_BARS``): its evidence is sparse (one note per beat
at most, no harmony to change), and what tells its bars apart differs from a texture's; it also weighs what
its melody says of downbeats (``BarCues.melodic_downbeat``, from ``bat.beats.accent``), which places a jig's
bars where its running eighths give the rhythm nothing to say. 2/4 against 4/4 is the hardest: the beats of
a 2/4 tune are grouped in twos by its phrasing as strongly as those of a 4/4 tune, and what tells them apart
is mostly how densely notes fill the beat and where the tune starts and ends, read per bar length
(``BarWeights.first_note``, ``last_note``): a reel in running eighths is a bar of four quarter beats whether
written in 2/2 or 4/4, and it is placed by its first and last notes or hedged as two bars of two.

Legend: ``B`` beats, ``F`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bat.beats.levels import peaks_at
from bat.ingest.song import Song

KICKS = (35, 36)
CRASHES = (49, 57)


def downbeat_evidence(song: Song, beats: np.ndarray) -> np.ndarray:
    """(B, 5) per-beat evidence of a bar start: bass onset, harmonic change, long notes, onsets, kick/crash.

    A beat "owns" the notes that start from a fifth of a beat before it (performers anticipate) to a fifth
    before the next beat.
    """
    n = len(beats)
    period = np.diff(beats, append=beats[-1] + (beats[-1] - beats[-2] if n > 1 else 0.5))
    lead = 0.2 * period
    edges = np.append(beats - lead, np.inf)
    evidence = np.zeros((n, 5))
    notes = song.notes
    if len(notes):
        owner = np.searchsorted(edges, notes.start, side="right") - 1
        at_beat = (owner >= 0) & (np.abs(notes.start - beats[np.clip(owner, 0, n - 1)]) <= lead[np.clip(owner, 0, n - 1)])
        length = np.log2(1.0 + (notes.end - notes.start) / period[np.clip(owner, 0, n - 1)])
        valid = owner >= 0
        lowest = np.full(n, 128.0)
        np.minimum.at(lowest, owner[valid], notes.pitch[valid].astype(float))
        chroma = np.zeros((n, 12))
        weight = (notes.velocity[valid] / 100.0) * np.minimum(length[valid], 2.0)
        np.add.at(chroma, (owner[valid], notes.pitch[valid] % 12), weight)
        hit = at_beat & valid
        bass = hit & (notes.pitch <= lowest[np.clip(owner, 0, n - 1)] + 2)
        np.add.at(evidence[:, 0], owner[bass], length[bass])
        np.add.at(evidence[:, 2], owner[hit], length[hit])
        np.add.at(evidence[:, 3], owner[hit], 1.0)
        norm = np.linalg.norm(chroma, axis=1) + 1e-9
        cosine = (chroma[1:] * chroma[:-1]).sum(axis=1) / (norm[1:] * norm[:-1])
        evidence[1:, 1] = np.where(chroma[1:].any(axis=1), 1.0 - cosine, 0.0)
    drums = song.drums
    if len(drums):
        owner = np.searchsorted(edges, drums.start, side="right") - 1
        valid = owner >= 0
        weight = np.where(np.isin(drums.pitch, CRASHES), 2.0, np.where(np.isin(drums.pitch, KICKS), 1.0, 0.0))
        np.add.at(evidence[:, 4], owner[valid], weight[valid])
    evidence[:, 3] = np.log1p(evidence[:, 3])
    return evidence


@dataclass(frozen=True)
class BarWeights:
    """How much each cue counts in a bar hypothesis's score: per-position templates of the (z-scored) per-beat
    evidence, and song-wide terms. Read a template row as "at this position expect": columns are bass onset,
    harmonic change, long notes, onset count, kick/crash. Terms are per bar length, and those of the first and
    last notes per position in the bar as well."""

    templates: dict[int, np.ndarray]
    length_prior: dict[int, float]
    repetition: dict[int, float]  # × how much better the rhythm repeats after this bar length than on average
    # per bar length, by the position in the bar (0: the downbeat, length - 1: an upbeat) of the beat the first
    # note lands on, of the same when that note comes a fraction of a beat early, and of the last onset's beat
    first_note: dict[int, np.ndarray]
    fractional_first_note: dict[int, np.ndarray]
    last_note: dict[int, np.ndarray] = field(default_factory=lambda: {length: np.zeros(length) for length in (2, 3, 4)})
    density: dict[int, float] = field(default_factory=lambda: {2: 0.0, 3: 0.0, 4: 0.0})  # × log(onsets per beat)
    compound: dict[int, float] = field(default_factory=lambda: {2: 0.0, 3: 0.0, 4: 0.0})  # when beats divide in three
    melodic_downbeat: float = 0.0  # × how much more the melody's downbeat log-odds (``BarCues``) say "downbeat" there


def at_ends(downbeat: float, upbeat: float) -> dict[int, np.ndarray]:
    """Position weights, per bar length, that see only the downbeat and the bar's last beat (the upbeat)."""
    return {length: np.array([downbeat] + [0.0] * (length - 2) + [upbeat]) for length in (2, 3, 4)}


# Textures (chords, several voices, drums). Templates fitted (conditional logit over every bar length and
# phase of a song, target: the truest downbeats) on humanized demo-corpus and pop performances with tracked
# beats; the priors then fitted (a grid maximising the mean downbeat F-measure, templates kept) on the
# even-numbered humanized demo-corpus files, the odd-numbered ones held out to check them.
TEXTURE_BARS = BarWeights(
    templates={
        2: np.array([[0.49, 0.21, 0.45, 0.17, -0.04], [-0.5, -0.2, -0.46, -0.17, 0.04]]),
        3: np.array([[0.66, 0.37, 0.86, 0.48, 0.0], [-0.26, -0.55, -0.4, -0.4, 0.0], [-0.34, 0.19, -0.42, -0.03, 0.0]]),
        4: np.array([[0.19, 0.53, 0.75, 0.33, 0.18], [-0.15, -0.05, -0.63, -0.3, -0.11],
                     [-0.06, 0.28, 0.14, 0.16, 0.05], [-0.03, -0.77, -0.31, -0.21, -0.12]]),
    },
    length_prior={2: -0.05, 3: -0.38, 4: 0.0},  # 4/4 is the most common meter
    repetition={2: 5.0, 3: 5.0, 4: 5.0},
    first_note=at_ends(0.99, 0.97),  # both common
    fractional_first_note=at_ends(1.5, 0.0),  # an eighth-note pickup leads to a downbeat
)


def melody_templates(downbeat: np.ndarray, half_bar: np.ndarray) -> dict[int, np.ndarray]:
    """Templates that contrast the downbeat with the bar's other beats (and, in bars of four, the third beat
    with the second and fourth): all a single line's sparse evidence supports without overfitting."""
    templates = {length: np.vstack([downbeat] + [-downbeat / (length - 1)] * (length - 1)) for length in (2, 3, 4)}
    templates[4] = templates[4] + np.vstack([np.zeros(5), -half_bar / 2, half_bar, -half_bar / 2])
    return templates


# A single line (``is_melody``): its own weights, fitted by bench/fit_bars.py (maximising the expected downbeat
# F of a softmax over each tune's hypotheses, the melody's downbeat term held fixed) on humanized performances of
# 1,260 folk and fiddle tunes drawn at random from the corpus, over the beats the tracker chose.
# Denser notes point to bars of two (a 2/4 tune moves in eighths and sixteenths where a 4/4 one moves in
# quarters and eighths), and a rhythm that repeats after three beats to bars of three. Where the first and last
# notes land reads differently per bar length: a first note on a beat of its own starts a bar of two but is at
# least as often the upbeat of a bar of four, and a reel's last onset falls on the third beat of its bar of four.
MELODY_BARS = BarWeights(
    templates=melody_templates(np.array([0.06, 0.18, -0.28, 0.2, 0.0]), np.array([-0.09, 0.06, 0.05, -0.04, 0.0])),
    length_prior={2: 0.01, 3: -0.0, 4: -0.01},
    repetition={2: -0.75, 3: 1.3, 4: 0.19},
    first_note={2: np.array([0.53, -0.78]), 3: np.array([0.31, -0.47, 0.19]), 4: np.array([0.16, -0.27, -0.22, 0.55])},
    fractional_first_note={2: np.array([0.66, -0.28]), 3: np.array([0.19, -0.21, -0.02]), 4: np.array([0.27, -0.36, -0.25, -0.01])},
    last_note={2: np.array([-0.41, 0.43]), 3: np.array([0.05, -0.13, 0.08]), 4: np.array([-0.13, -0.1, 0.11, 0.09])},
    density={2: 0.73, 3: -0.14, 4: -0.31},
    compound={2: 0.35, 3: 0.3, 4: -0.42},
    # the melody's own downbeat log-odds (``bat.beats.accent``): chosen by bench/fit_accent.py on a third draw of
    # tunes (the trees are overconfident on those they were fitted on): downbeat F there, fiddle 0.62 -> 0.70 and
    # folk 0.75 -> 0.78; on the held-out sample 0.63 -> 0.65 and 0.81 -> 0.81
    melodic_downbeat=1.5,
)


@dataclass(frozen=True)
class BarCues:
    """Song-wide cues to the bar beside the per-beat evidence: where the music starts and ends, how its rhythm
    repeats (``bar_repetition``), how many notes a beat holds, and whether beats divide in three."""

    first_beat: int = 0  # the beat the first note lands on (songs start on a downbeat or an upbeat)
    fractional_pickup: bool = False  # the first note comes a fraction of a beat before it
    last_beat: int = -1  # the beat of the last onset; -1: not known
    repetition: dict[int, float] = field(default_factory=dict)
    onset_density: float = 0.0  # log of note onsets per beat
    compound: bool = False
    melodic_downbeat: np.ndarray | None = None  # (B,) a single line's downbeat log-odds per beat (``accent``)


def bar_repetition(activation: np.ndarray, beats: np.ndarray, fps: int, lengths: tuple[int, ...]) -> dict[int, float]:
    """For each bar length, the mean cosine between the onset pattern of every ``length`` beats (12 slots a
    beat) and of the ``length`` beats that follow, over all phases: bars repeat their rhythm."""
    out = {length: 0.0 for length in lengths}
    if len(beats) < 4:
        return out
    span = np.diff(beats)
    slots = np.stack([peaks_at(activation, beats[:-1] + span * k / 12, fps) for k in range(12)], axis=1)  # (B-1, 12)
    for length in lengths:
        count = slots.shape[0] - 2 * length + 1
        if count < 2:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(slots, (length, 12))[:, 0].reshape(-1, length * 12)
        a, b = windows[:count], windows[length:length + count]
        out[length] = float(((a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-9)).mean())
    return out


def is_melody(song: Song) -> bool:
    """A single line: no drums, and nine in ten note onsets alone: nothing else starts with them, and nothing
    sounds on but the note just before, whose tail may ring into them (a transcription of a fiddle or a voice
    rings so on two onsets in five) where an accompaniment's held note would span several onsets."""
    notes = song.notes
    if len(song.drums) or len(notes) < 8:
        return False
    order = np.argsort(notes.start, kind="stable")
    start, end = notes.start[order], notes.end[order]
    sounding_until = np.maximum.accumulate(end)  # the latest end among the notes up to each one
    alone = np.ones(len(start), bool)
    alone[1:] = np.diff(start) > 0.03
    alone[2:] &= start[2:] >= sounding_until[:-2] - 0.05
    return bool(alone.mean() >= 0.9)


@dataclass
class BarChoice:
    beats_per_bar: int
    phase: int  # index of the first downbeat among the beats (0..beats_per_bar-1)
    score: float
    confidence: float  # softmax share of the best hypothesis
    repetition: dict[int, float] = field(default_factory=dict)  # bar_repetition's answer it was given


@dataclass
class BarHypotheses:
    """Every (bar length, phase) hypothesis for a song and its score: what ``best`` picks from, and what other
    evidence (madmom's audio downbeats, ``bat.beats.audio_bars``) is added to."""

    lengths: np.ndarray  # (H,) int, beats per bar
    phases: np.ndarray  # (H,) int, index of the first downbeat among the beats
    scores: np.ndarray  # (H,) float
    cues: BarCues = field(default_factory=BarCues)  # the song-wide cues they were scored with

    def best(self) -> BarChoice:
        best = int(np.argmax(self.scores))
        share = float(1.0 / np.exp(self.scores - self.scores[best]).sum())
        return BarChoice(int(self.lengths[best]), int(self.phases[best]), float(self.scores[best]), share, dict(self.cues.repetition))


def bar_hypotheses(
    evidence: np.ndarray, cues: BarCues, beats_per_bar: tuple[int, ...] = (2, 3, 4), melody: bool = False,
    weights: BarWeights | None = None,
) -> BarHypotheses:
    """Score every bar length and phase by how its template fits the beats' evidence over the whole song, plus
    the song-wide cues; a single line (``melody``, see ``is_melody``) is scored with its own weights, and
    ``weights`` overrides both (bench/fit_bars.py compares weights so)."""
    weights = weights if weights is not None else MELODY_BARS if melody else TEXTURE_BARS
    repetition = cues.repetition
    mean_repetition = float(np.mean([repetition.get(length, 0.0) for length in beats_per_bar]))
    spread = evidence.std(axis=0)
    z = (evidence - evidence.mean(axis=0)) / np.where(spread > 1e-9, spread, 1.0)
    index = np.arange(len(z))
    first_note = weights.fractional_first_note if cues.fractional_pickup else weights.first_note
    melodic = cues.melodic_downbeat if weights.melodic_downbeat and cues.melodic_downbeat is not None else None
    if melodic is not None:
        melodic = (melodic - melodic.mean()) / max(float(melodic.std()), 1e-9)
    hypotheses: list[tuple[float, int, int]] = []
    for length in beats_per_bar:
        template = weights.templates[length]
        for phase in range(length):
            position = (index - phase) % length
            score = weights.length_prior[length] + weights.repetition[length] * (repetition.get(length, 0.0) - mean_repetition)
            score += weights.density[length] * cues.onset_density + weights.compound[length] * cues.compound
            for p in range(length):
                if (position == p).any():
                    score += float(z[position == p].mean(axis=0) @ template[p])
            if melodic is not None and len(melodic) > length:
                means = [melodic[position == p].mean() for p in range(length)]
                score += weights.melodic_downbeat * (means[0] - float(np.mean(means[1:])))
            if len(z):
                score += float(first_note[length][position[min(cues.first_beat, len(z) - 1)]])
                if cues.last_beat >= 0:
                    score += float(weights.last_note[length][position[min(cues.last_beat, len(z) - 1)]])
            hypotheses.append((score, length, phase))
    scores, lengths, phases = (np.array(column) for column in zip(*hypotheses))
    return BarHypotheses(lengths.astype(np.int64), phases.astype(np.int64), scores.astype(np.float64), cues)

