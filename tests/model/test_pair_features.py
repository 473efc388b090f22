"""Pairwise beat features: the vectorized tensor code equals a slow, obvious Python reference, on random
descriptors, on synthetic songs and with masked and padded beats; plus hand-made known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bat.data.synthetic import synthetic_song
from bat.model.pairwise import (
    BAR_DISTANCE_EDGES,
    BEAT_DISTANCE_EDGES,
    DESCRIPTOR_NAMES,
    N_PAIR,
    PAIR_FEATURE_NAMES,
    RUN_LENGTHS,
    pair_features,
    signed_distance_bucket,
)


def _bucket_name(prefix: str, d: int, edges: tuple[int, ...]) -> str:
    a = abs(d)
    if a <= 4:
        label = str(a)
    elif a >= edges[-1]:
        label = f"{edges[-1]}_up"
    else:
        lo = max(e for e in (5, *edges) if e <= a)
        hi = min(e for e in edges if e > a)
        label = f"{lo}_{hi - 1}"
    sign = "" if d == 0 else ("+" if d > 0 else "-")
    return f"{prefix}_{sign}{label}"


def reference_pair_features(desc: np.ndarray, valid: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """One window, loops over every pair: (L, L, N_PAIR) bool, straight from the definitions."""
    L = len(desc)
    col = {name: [int(v) for v in desc[:, k]] for k, name in enumerate(DESCRIPTOR_NAMES)}
    bass, pcset, bs = col["bass_pitch"], col["pcset"], col["beat_shape"]
    mp, ms = col["melody_pitch"], col["melody_shape"]
    bar, pos = col["bar_index"], col["beat_in_bar"]
    known = [bool(valid[i]) and not bool(hidden[i]) for i in range(L)]
    pcs = [{k for k in range(12) if pcset[i] >> k & 1} for i in range(L)]
    value = {  # what must be equal, beat by beat, for the "same X for the next n beats" features
        "bass": lambda t: bass[t],
        "chord": lambda t: pcset[t],
        "melody": lambda t: (ms[t], mp[t]),
    }
    present = {"bass": lambda t: bass[t] >= 0, "chord": lambda t: pcset[t] != 0, "melody": lambda t: ms[t] != 0}
    index = {name: k for k, name in enumerate(PAIR_FEATURE_NAMES)}
    out = np.zeros((L, L, N_PAIR), bool)
    for i in range(L):
        for j in range(L):
            f = {}
            see = known[i] and known[j]
            f["same_bass"] = see and bass[i] >= 0 and bass[i] == bass[j]
            f["same_chord"] = see and pcset[i] != 0 and pcset[i] == pcset[j]
            f["same_melody"] = see and ms[i] != 0 and ms[i] == ms[j] and mp[i] == mp[j]
            f["same_beat"] = see and bs[i] != 0 and bs[i] == bs[j] and bass[i] == bass[j]
            moved = see and ms[i] != 0 and ms[i] == ms[j]
            f["melody_transposed"] = moved and mp[i] != mp[j]
            for k in range(12):
                f[f"melody_shift_ic{k}"] = moved and (mp[j] - mp[i]) % 12 == k
                f[f"chord_shift_ic{k}"] = see and pcset[i] != 0 and {(p + k) % 12 for p in pcs[i]} == pcs[j]
                f[f"bass_ic{k}"] = see and bass[i] >= 0 and bass[j] >= 0 and (bass[j] - bass[i]) % 12 == k
            shape = see and bs[i] != 0 and bs[i] == bs[j]
            f["beat_transposed"] = shape and bass[j] != bass[i]
            f["beat_tone_up"] = shape and bass[j] - bass[i] == 2
            f["beat_tone_down"] = shape and bass[j] - bass[i] == -2
            for what in ("bass", "chord", "melody"):
                for n in RUN_LENGTHS:
                    f[f"same_{what}_next_{n}"] = (
                        see
                        and present[what](i)
                        and all(
                            i + t < L
                            and j + t < L
                            and known[i + t]
                            and known[j + t]
                            and value[what](i + t) == value[what](j + t)
                            for t in range(n)
                        )
                    )
            f["same_beat_in_bar"] = pos[i] == pos[j]
            f[_bucket_name("beat_dist", j - i, BEAT_DISTANCE_EDGES)] = True
            f[_bucket_name("bar_dist", bar[j] - bar[i], BAR_DISTANCE_EDGES)] = True
            for name, v in f.items():
                out[i, j, index[name]] = v
    return out


def _random_desc(rng: np.random.Generator, L: int) -> np.ndarray:
    """An 8-beat pattern repeated, often transposed, with random edits, so that
    equalities, transpositions by many intervals and runs all happen."""
    P = 8
    bass = np.where(rng.random(P) < 0.2, -1, rng.integers(36, 48, P))
    pcset = np.where(bass < 0, 0, rng.integers(1, 1 << 12, P))
    mp = np.where(rng.random(P) < 0.3, -1, rng.integers(60, 80, P))
    ms = np.where(mp < 0, 0, rng.integers(1, 4, P))
    bs = np.where(bass < 0, 0, rng.integers(1, 4, P))
    rows = []
    for rep in range(-(-L // P)):
        t = (0, 0, 1, 0, 3, 7, 0, 0, 2, 11)[rep % 10]  # their differences cover every interval class
        for k in range(P):
            b, c, m, x, y = bass[k], pcset[k], mp[k], ms[k], bs[k]
            if rng.random() < 0.08:  # an edit
                b, c, m = rng.integers(36, 48), rng.integers(1, 1 << 12), rng.integers(60, 80)
            rot = ((c << t) | (c >> (12 - t))) & 0xFFF
            rows.append((b + t if b >= 0 else -1, rot, m + t if m >= 0 else -1, x, y))
    rows = np.array(rows[:L], dtype=np.int64)
    beats_per_bar = 3
    bar = np.arange(L) // beats_per_bar
    pos = np.arange(L) % beats_per_bar
    return np.concatenate([rows, bar[:, None], pos[:, None]], axis=1)


def _check(desc: np.ndarray, valid: np.ndarray, hidden: np.ndarray):
    got = pair_features(torch.from_numpy(desc)[None], torch.from_numpy(valid)[None], torch.from_numpy(hidden)[None])[0]
    want = reference_pair_features(desc, valid, hidden)
    got = got.numpy()
    bad = [PAIR_FEATURE_NAMES[f] for f in range(N_PAIR) if not np.array_equal(got[..., f], want[..., f])]
    assert not bad, f"vectorized != reference for {bad}"
    return want


def test_names_are_unique_and_enough():
    assert len(set(PAIR_FEATURE_NAMES)) == N_PAIR >= 48


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorized_equals_reference_on_random_windows(seed):
    rng = np.random.default_rng(seed)
    L = 80
    desc = _random_desc(rng, L)
    valid = np.arange(L) < L - 7  # padded tail
    hidden = rng.random(L) < 0.15
    want = _check(desc, valid, hidden)
    idle = [name for k, name in enumerate(PAIR_FEATURE_NAMES) if not want[..., k].any()]
    assert all("next_64" in name or "dist" in name for name in idle), f"{idle} never fire: the test would prove little"


def test_distance_buckets_match_the_reference_far_away():
    d = torch.arange(-600, 601)
    for prefix, edges in (("beat_dist", BEAT_DISTANCE_EDGES), ("bar_dist", BAR_DISTANCE_EDGES)):
        names = [n for n in PAIR_FEATURE_NAMES if n.startswith(prefix)]
        got = [names[k] for k in signed_distance_bucket(d, edges).tolist()]
        assert got == [_bucket_name(prefix, int(x), edges) for x in d]


def test_vectorized_equals_reference_on_a_synthetic_song_with_long_runs():
    song = synthetic_song(seed=3, number=0, min_bars=40, max_bars=40)
    desc = song.descriptors[:150]
    L = len(desc)
    hidden = np.zeros(L, bool)
    hidden[[5, 77, 78]] = True
    want = _check(desc, np.ones(L, bool), hidden)
    assert want[..., PAIR_FEATURE_NAMES.index("same_chord_next_64")].any()


def test_a_batch_is_its_windows_one_by_one():
    rng = np.random.default_rng(5)
    desc = torch.from_numpy(np.stack([_random_desc(rng, 40) for _ in range(3)]))
    valid = torch.ones(3, 40, dtype=torch.bool)
    valid[1, 30:] = False
    hidden = torch.from_numpy(rng.random((3, 40)) < 0.2)
    batch = pair_features(desc, valid, hidden)
    for b in range(3):
        assert torch.equal(batch[b], pair_features(desc[b : b + 1], valid[b : b + 1], hidden[b : b + 1])[0])


def test_known_answers_on_a_hand_made_window():
    # 4/4, bar 0: C major over C; bar 1: bar 0 one whole tone up, melody transposed too; beat 8: silence.
    c, d = 0b000010010001, 0b001001000100  # {C, E, G}, {D, F#, A}
    rows = [
        # bass, pcset, melody_pitch, melody_shape, beat_shape, bar, beat_in_bar
        (48, c, 72, 11, 101, 0, 0),
        (48, c, 74, 12, 102, 0, 1),
        (48, c, -1, 0, 103, 0, 2),
        (48, c, 76, 13, 104, 0, 3),
        (50, d, 74, 11, 101, 1, 0),
        (50, d, 76, 12, 102, 1, 1),
        (50, d, -1, 0, 103, 1, 2),
        (50, d, 78, 13, 104, 1, 3),
        (-1, 0, -1, 0, 0, 2, 0),
    ]
    desc = torch.tensor(rows, dtype=torch.int64)[None]
    p = pair_features(desc, torch.ones(1, 9, dtype=torch.bool))[0]

    def f(name, i, j):
        return bool(p[i, j, PAIR_FEATURE_NAMES.index(name)])

    assert f("beat_tone_up", 0, 4) and f("beat_tone_down", 4, 0) and f("beat_transposed", 1, 5)
    assert f("melody_transposed", 0, 4) and f("melody_shift_ic2", 0, 4) and not f("melody_shift_ic0", 0, 4)
    assert f("chord_shift_ic2", 0, 4) and f("chord_shift_ic10", 4, 0) and f("same_chord", 0, 3)
    assert f("bass_ic2", 0, 4) and f("same_bass", 0, 1) and not f("same_bass", 8, 8)
    assert f("same_chord_next_4", 0, 0) and not f("same_chord_next_4", 0, 1)  # beat 4 changes the chord
    assert f("same_beat_in_bar", 1, 5) and f("bar_dist_+1", 0, 4)
    assert f("beat_dist_+4", 0, 4) and f("beat_dist_-8_15", 8, 0)
    assert f("beat_dist_-5_7", 7, 1) and f("bar_dist_-2", 8, 0)
    assert not p[8, :, : PAIR_FEATURE_NAMES.index("same_beat_in_bar")].any()  # silence matches nothing
    hidden = torch.zeros(1, 9, dtype=torch.bool)
    hidden[0, 4] = True
    ph = pair_features(desc, torch.ones(1, 9, dtype=torch.bool), hidden)[0]
    assert not ph[0, 4, : PAIR_FEATURE_NAMES.index("same_beat_in_bar")].any()  # a masked beat shows no content
    assert ph[0, 4, PAIR_FEATURE_NAMES.index("bar_dist_+1")]  # but keeps its place
    assert not ph[0, 0, PAIR_FEATURE_NAMES.index("same_chord_next_16")]
