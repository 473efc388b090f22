"""Held-out evaluation passes: every held-out beat is masked in exactly one pass and scored exactly once, the
same beats with the same context for any batch layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bat.data.dataset import EvalWindows, StoreHandle
from bat.model import BatEncoder, get_config
from bat.model.pairwise import DESCRIPTOR_NAMES
from bat.train.evaluate import mask_passes, predict_masked, window_masks


def _desc(L: int, beats_per_bar: int = 3) -> torch.Tensor:
    d = torch.zeros(1, L, len(DESCRIPTOR_NAMES), dtype=torch.int64)
    d[0, :, DESCRIPTOR_NAMES.index("bar_index")] = torch.arange(L) // beats_per_bar + 5
    return d


def test_passes_partition_the_real_beats_at_about_the_mask_rate():
    valid = torch.ones(1, 3000, dtype=torch.bool)
    valid[0, 2900:] = False
    masks = window_masks(valid, _desc(3000), song=4, start=0, rate=0.15, span="beat", seed=0)
    assert masks.shape == (mask_passes(0.15), 3000) == (7, 3000)
    assert (masks.sum(0) == valid[0].long()).all()  # each real beat in exactly one pass, padding in none
    assert masks[:, :2900].float().mean(1).sub(1 / 7).abs().max() < 0.02
    again = window_masks(valid, _desc(3000), song=4, start=0, rate=0.15, span="beat", seed=0)
    assert torch.equal(masks, again)


def test_bar_passes_hide_whole_bars():
    valid = torch.ones(1, 300, dtype=torch.bool)
    masks = window_masks(valid, _desc(300), song=1, start=0, rate=0.2, span="bar", seed=0)
    per_bar = masks.view(5, 100, 3).sum(-1)
    assert ((per_bar == 0) | (per_bar == 3)).all() and (masks.sum(0) == 1).all()


def test_every_held_out_beat_is_scored_once_whatever_the_batch_size(small_store):
    handle = StoreHandle(small_store)
    data = EvalWindows(handle, songs=[0, 3, 5], max_len=32)
    torch.manual_seed(0)
    model = BatEncoder(get_config("tiny", n_features=len(small_store.feature_names)))
    a = predict_masked(model, data, batch_size=2)
    b = predict_masked(model, data, batch_size=5)
    n_beats = sum(int(small_store.songs["n_beats"].loc[s]) for s in (0, 3, 5))
    assert len(a.song) == n_beats and len(set(zip(a.song, a.beat))) == n_beats
    np.testing.assert_array_equal(a.song, b.song)
    np.testing.assert_array_equal(a.beat, b.beat)
    np.testing.assert_allclose(a.prob, b.prob, atol=1e-5)


def test_an_invalid_rate_is_an_error():
    with pytest.raises(ValueError, match="mask rate"):
        mask_passes(0.0)


@pytest.mark.parametrize("span", ["beat", "bar"])
def test_padding_does_not_change_a_windows_passes(span):
    valid = torch.ones(1, 40, dtype=torch.bool)
    alone = window_masks(valid, _desc(40), song=2, start=64, rate=0.15, span=span, seed=1)
    padded_valid = torch.cat([valid, torch.zeros(1, 24, dtype=torch.bool)], dim=1)
    padded_desc = torch.cat([_desc(40), torch.zeros(1, 24, len(DESCRIPTOR_NAMES), dtype=torch.int64)], dim=1)
    padded = window_masks(padded_valid, padded_desc, song=2, start=64, rate=0.15, span=span, seed=1)
    assert torch.equal(padded[:, :40], alone) and not padded[:, 40:].any()
