"""Pairwise beat features, computed on the fly on the model's device from the per-beat descriptors.

Nothing here is stored: a window of L beats gives an (L, L, N_PAIR) bool tensor, built with whole-tensor
comparisons (no loop over beats). ``PAIR_FEATURE_NAMES`` is the one list of what each channel means; the
docs, the tests and the model all import it from here. For a pair (i, j), i is the attending (query) beat
and j the attended (key) beat; "up" and "after" are read from i to j.

Content features (bass, chord, melody, shapes) never look at a hidden (masked) beat or at padding: such a
beat compares unequal to everything, so a masked beat's notes cannot leak into the prediction of its own
features. Position features (distances, beat in bar) still see it: where a beat sits is known, not guessed.

Legend: b batch, i query beat, j key beat, f pair feature.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from bat.features.descriptors import DESCRIPTOR_NAMES

RUN_LENGTHS = (4, 16, 64)  # "equal for the next n beats" horizons
BEAT_DISTANCE_EDGES = (8, 16, 32, 64, 128, 256)  # |j - i| beyond EXACT_DISTANCE: log-spaced buckets [5,8), [8,16)...
BAR_DISTANCE_EDGES = (8, 16, 32, 64)  # the same for bar numbers
EXACT_DISTANCE = 4  # distances 0..4 (beats or bars) get a bucket each


def distance_bucket_labels(edges: tuple[int, ...]) -> list[str]:
    """Names of the unsigned distance buckets: '0'..'4', then '5_7', '8_15', ..., '<last>_up'."""
    labels = [str(d) for d in range(EXACT_DISTANCE + 1)]
    lows = (EXACT_DISTANCE + 1, *edges)
    for lo, hi in zip(lows, edges):
        labels.append(f"{lo}_{hi - 1}")
    labels.append(f"{edges[-1]}_up")
    return labels


def _signed_labels(prefix: str, edges: tuple[int, ...]) -> list[str]:
    labels = distance_bucket_labels(edges)
    return [f"{prefix}_0"] + [f"{prefix}_+{x}" for x in labels[1:]] + [f"{prefix}_-{x}" for x in labels[1:]]


def signed_distance_bucket(d: Tensor, edges: tuple[int, ...]) -> Tensor:
    """Bucket index of a signed distance: 0 for 0, 1..K for positive buckets, K+1..2K for negative ones.

    Exact for |d| <= EXACT_DISTANCE, then one bucket per [edge_k, edge_k+1) and one for >= edges[-1].
    The order matches ``_signed_labels``.
    """
    a = d.abs()
    boundaries = torch.tensor(edges, device=d.device, dtype=d.dtype)
    far = EXACT_DISTANCE + 1 + torch.bucketize(a, boundaries, right=True)  # [5, e0) -> 5, [e0, e1) -> 6...
    unsigned = torch.where(a <= EXACT_DISTANCE, a, far)  # 0..K
    n_pos = EXACT_DISTANCE + 1 + len(edges)  # K: positive buckets 1..K
    return torch.where(d < 0, unsigned + n_pos, unsigned)


def n_signed_buckets(edges: tuple[int, ...]) -> int:
    return 1 + 2 * (EXACT_DISTANCE + 1 + len(edges))


@functools.lru_cache(maxsize=16)
def _bucket_table(edges: tuple[int, ...], device: torch.device) -> Tensor:
    """``signed_distance_bucket`` of -edges[-1]..edges[-1], for lookups of clamped distances."""
    far = edges[-1]
    return signed_distance_bucket(torch.arange(-far, far + 1, device=device), edges)


def distance_bucket(d: Tensor, edges: tuple[int, ...]) -> Tensor:
    """``signed_distance_bucket`` by table lookup (one gather instead of a handful of int64 passes)."""
    far = edges[-1]
    return _bucket_table(edges, d.device)[d.clamp(-far, far) + far]


@functools.lru_cache(maxsize=8)
def _beat_distance_planes(L: int, device: torch.device) -> Tensor:
    """(1, n_beat_buckets, L, L) bool one-hot of the bucketed j - i: the same for every window of length L."""
    idx = torch.arange(L, device=device)
    bucket = distance_bucket(idx[None, :] - idx[:, None], BEAT_DISTANCE_EDGES)  # (L, L)
    return bucket[None, None] == torch.arange(n_signed_buckets(BEAT_DISTANCE_EDGES), device=device)[None, :, None, None]


def _distance_docs(prefix: str, edges: tuple[int, ...], unit: str) -> list[tuple[str, str]]:
    docs = []
    for name in _signed_labels(prefix, edges):
        label = name.removeprefix(prefix + "_")
        if label == "0":
            docs.append((name, f"i and j are in the same {unit}"))
            continue
        lo, _, hi = label[1:].partition("_")
        amount = lo if not hi else (f"{lo} or more" if hi == "up" else f"{lo} to {hi}")
        docs.append((name, f"j is {amount} {unit}s {'after' if label[0] == '+' else 'before'} i"))
    return docs


_PAIR_FEATURES: list[tuple[str, str]] = [
    ("same_bass", "both basses sound and are the same pitch"),
    ("same_chord", "the same non-empty pitch-class set"),
    ("same_melody", "the same melody (shape and pitch)"),
    ("same_beat", "every note identical: the same shape over the same bass"),
    ("melody_transposed", "the melody of i reappears in j at another pitch"),
    *((f"melody_shift_ic{k}", f"the melody of i reappears in j moved by interval class {k}") for k in range(12)),
    *((f"chord_shift_ic{k}", f"the pitch-class set of i moved up {k} semitones is that of j") for k in range(12)),
    *((f"bass_ic{k}", f"both basses sound and (bass_j - bass_i) mod 12 = {k}") for k in range(12)),
    ("beat_transposed", "j is i with every note moved by the same nonzero interval"),
    ("beat_tone_up", "j is i with every note moved one whole tone up"),
    ("beat_tone_down", "j is i with every note moved one whole tone down"),
    *(
        (
            f"same_{what}_next_{n}",
            f"i has a {what}, equal at i + t and j + t for t = 0..{n - 1} (in the window; both none counts as equal)",
        )
        for what in ("bass", "chord", "melody")
        for n in RUN_LENGTHS
    ),
    ("same_beat_in_bar", "the same position in the bar"),
    *_distance_docs("beat_dist", BEAT_DISTANCE_EDGES, "beat"),
    *_distance_docs("bar_dist", BAR_DISTANCE_EDGES, "bar"),
]
PAIR_FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in _PAIR_FEATURES)  # the channel order of pair_features
PAIR_FEATURE_DOCS: dict[str, str] = dict(_PAIR_FEATURES)  # one line per pair feature, for the docs table
N_PAIR = len(PAIR_FEATURE_NAMES)
_INDEX = {name: k for k, name in enumerate(PAIR_FEATURE_NAMES)}

# Descriptor values that mean "nothing there"; hidden and padded beats are set to these.
_ABSENT = {"bass_pitch": -1, "pcset": 0, "melody_pitch": -1, "melody_shape": 0, "beat_shape": 0}


def _col(desc: Tensor, name: str) -> Tensor:
    return desc[..., DESCRIPTOR_NAMES.index(name)]


def _shift(x: Tensor, s: int) -> Tensor:
    """``out[b, i, j] = x[b, i + s, j + s]``, False where that leaves the window."""
    L = x.shape[-1]
    out = torch.zeros_like(x)
    if s < L:
        out[:, : L - s, : L - s] = x[:, s:, s:]
    return out


def _runs(eq: Tensor, lengths: tuple[int, ...]) -> dict[int, Tensor]:
    """``run[n][b, i, j]``: eq holds at (i + t, j + t) for every t < n (False where that leaves the window).

    Runs of power-of-two lengths by doubling along the diagonal (run_2m = run_m & run_m shifted by m),
    then any n from its binary decomposition: run_(a+b)(i, j) = run_a(i, j) & run_b(i + a, j + a).
    """
    pow2, m = {1: eq}, 1
    while 2 * m <= max(lengths):
        pow2[2 * m] = pow2[m] & _shift(pow2[m], m)
        m *= 2
    out = {}
    for n in lengths:
        run, offset = None, 0
        for p in sorted(pow2, reverse=True):
            if n - offset >= p:
                part = _shift(pow2[p], offset)
                run = part if run is None else run & part
                offset += p
        out[n] = run
    return out


@torch.no_grad()
def pair_features(desc: Tensor, valid: Tensor, hidden: Tensor | None = None) -> Tensor:
    """Pairwise features of every beat pair in a batch of windows.

    desc: (B, L, len(DESCRIPTOR_NAMES)) int64, columns in DESCRIPTOR_NAMES order.
    valid: (B, L) bool, False on padding.  hidden: (B, L) bool, True on masked beats (content unknown).
    Returns (B, L, L, N_PAIR) bool, channel f meaning PAIR_FEATURE_NAMES[f]; a view of a (B, N_PAIR, L, L)
    tensor (writing whole (L, L) planes is ~20x faster than interleaving channels on CPU).
    """
    known = valid if hidden is None else valid & ~hidden  # (B, L)
    both = known[:, :, None] & known[:, None, :]  # (B, L, L) both beats' content is visible
    kept = {name: torch.where(known, _col(desc, name), absent) for name, absent in _ABSENT.items()}
    bass, pcset, mel_pitch = kept["bass_pitch"], kept["pcset"], kept["melody_pitch"]
    mel_shape, beat_shape = kept["melody_shape"], kept["beat_shape"]
    bar, pos = _col(desc, "bar_index"), _col(desc, "beat_in_bar")

    def eq(x: Tensor) -> Tensor:  # (B, L) -> (B, L, L): x_i == x_j, content visible on both sides
        return (x[:, :, None] == x[:, None, :]) & both

    def diff(x: Tensor) -> Tensor:  # (B, L) -> (B, L, L): x_j - x_i
        return x[:, None, :] - x[:, :, None]

    has_bass, has_melody = bass >= 0, mel_shape != 0
    bass_eq, chord_eq = eq(bass), eq(pcset)
    melody_eq = eq(mel_shape) & eq(mel_pitch)  # equal melodies, including both absent
    shape_eq = eq(beat_shape) & (beat_shape != 0)[:, :, None]  # same non-silent shape over some bass
    melody_moved = eq(mel_shape) & has_melody[:, :, None]  # the melody of i reappears in j, at some pitch
    bass_pair = has_bass[:, :, None] & has_bass[:, None, :] & both
    bass_step = diff(bass)  # (B, L, L) bass_j - bass_i
    mel_step = diff(mel_pitch)

    B, L = known.shape
    out = torch.empty(B, N_PAIR, L, L, dtype=torch.bool, device=desc.device)
    filled: list[str] = []

    def put(first: str, value: Tensor) -> None:  # value (B, L, L), or (B | 1, k, L, L) for channels first.. first+k-1
        value = value[:, None] if value.dim() == 3 else value
        k0 = _INDEX[first]
        out[:, k0 : k0 + value.shape[1]] = value
        filled.extend(PAIR_FEATURE_NAMES[k0 : k0 + value.shape[1]])

    twelve = torch.arange(12, device=desc.device)[None, :, None, None]  # (1, 12, 1, 1) interval classes
    put("same_bass", bass_eq & has_bass[:, :, None])
    put("same_chord", chord_eq & (pcset != 0)[:, :, None])
    put("same_melody", melody_eq & has_melody[:, :, None])
    put("same_beat", shape_eq & (bass_step == 0))
    put("melody_transposed", melody_moved & (mel_step != 0))
    put("melody_shift_ic0", melody_moved[:, None] & (mel_step.remainder(12)[:, None] == twelve))  # (B, 12, L, L)
    k = twelve[..., 0]  # (1, 12, 1): rotate i's 12-bit set up by k semitones, compare with j's
    rotated = ((pcset[:, None, :] << k) | (pcset[:, None, :] >> (12 - k))) & 0xFFF  # (B, 12, L)
    chord_seen = ((pcset != 0)[:, :, None] & both)[:, None]  # (B, 1, L, L)
    put("chord_shift_ic0", (rotated[..., None] == pcset[:, None, None, :]) & chord_seen)
    put("bass_ic0", bass_pair[:, None] & (bass_step.remainder(12)[:, None] == twelve))
    put("beat_transposed", shape_eq & (bass_step != 0))
    put("beat_tone_up", shape_eq & (bass_step == 2))
    put("beat_tone_down", shape_eq & (bass_step == -2))
    runs_of = {"bass": (bass_eq, has_bass), "chord": (chord_eq, pcset != 0), "melody": (melody_eq, has_melody)}
    for what, (equal, present) in runs_of.items():
        runs = _runs(equal, RUN_LENGTHS)
        for n in RUN_LENGTHS:
            put(f"same_{what}_next_{n}", runs[n] & present[:, :, None])
    put("same_beat_in_bar", pos[:, :, None] == pos[:, None, :])
    put("beat_dist_0", _beat_distance_planes(L, desc.device))  # (1, n_beat_buckets, L, L)
    bar_bucket = distance_bucket(diff(bar), BAR_DISTANCE_EDGES)  # (B, L, L)
    n_bar = n_signed_buckets(BAR_DISTANCE_EDGES)
    put("bar_dist_0", bar_bucket[:, None] == torch.arange(n_bar, device=desc.device)[None, :, None, None])
    assert filled == list(PAIR_FEATURE_NAMES), "pair features computed out of PAIR_FEATURE_NAMES order"
    return out.permute(0, 2, 3, 1)  # (B, L, L, N_PAIR), channels-first in memory


def pair_feature_table() -> list[str]:
    """Markdown lines of the pair-feature table, for the generated docs."""
    lines = ["| # | pair feature | meaning (i attends to j) |", "|---|---|---|"]
    return lines + [f"| {k} | `{name}` | {PAIR_FEATURE_DOCS[name]} |" for k, name in enumerate(PAIR_FEATURE_NAMES)]
