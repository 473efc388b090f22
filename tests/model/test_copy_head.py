"""The copy path of the output (``bat.model.copy_head``): it copies only visible beats' bits (no leak from
masked beats, none from padding), its pairwise bias reads the neighbours' pair features as written, a
hand-set head copies the previous bar, and training reaches every one of its parameters."""

from __future__ import annotations

import pytest
import torch

from bat.model import BatEncoder, get_config
from bat.model.copy_head import NEIGHBOUR_SHIFTS, CopyHead, shift_pairs
from bat.model.encoder import attention_context
from bat.model.pairwise import (
    BAR_DISTANCE_EDGES,
    DESCRIPTOR_NAMES,
    PAIR_FEATURE_NAMES,
    pair_features,
    signed_distance_bucket,
)
from bat.train.objective import masked_bce


def _window(L: int = 24, F: int = 9, beats_per_bar: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    bits = torch.rand(1, L, F, generator=g) < 0.4
    desc = torch.randint(0, 12, (1, L, len(DESCRIPTOR_NAMES)), generator=g)
    desc[0, :, DESCRIPTOR_NAMES.index("bar_index")] = torch.arange(L) // beats_per_bar
    desc[0, :, DESCRIPTOR_NAMES.index("beat_in_bar")] = torch.arange(L) % beats_per_bar
    return bits, desc, torch.ones(1, L, dtype=torch.bool)


def _head(pairwise: bool, F: int, seed: int = 0) -> CopyHead:
    torch.manual_seed(seed)
    head = CopyHead(8, F, n_heads=2, d_head=4, n_pair_features=len(PAIR_FEATURE_NAMES) if pairwise else None)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return head


def _copy(head: CopyHead, x, bits, desc, valid, masked):
    ctx = attention_context(desc, valid, masked, pairwise=head.pairwise, relative=not head.pairwise)
    return head(x, bits, valid, masked, ctx)


@pytest.mark.parametrize("pairwise", [True, False])
def test_masked_beats_bits_never_reach_the_copy_path(pairwise):
    bits, desc, valid = _window()
    head = _head(pairwise, bits.shape[-1])
    x = torch.randn(1, bits.shape[1], 8)  # the tokens: what the (leak-free) encoder gives, held fixed here
    masked = torch.zeros_like(valid)
    masked[0, [3, 4, 11, 20]] = True
    out = _copy(head, x, bits, desc, valid, masked)
    other = bits.clone()
    other[masked] = ~other[masked]  # every bit of every masked beat flipped
    torch.testing.assert_close(_copy(head, x, other, desc, valid, masked), out, rtol=0, atol=0)
    # the same flip on visible beats moves the masked beats' copy logits: the path is live
    shown = bits.clone()
    shown[0, [2, 5, 12]] = ~shown[0, [2, 5, 12]]
    assert (_copy(head, x, shown, desc, valid, masked) - out)[masked].abs().max() > 1e-3


@pytest.mark.parametrize("pairwise", [True, False])
def test_copy_path_ignores_padding_and_survives_an_all_masked_window(pairwise):
    bits, desc, valid = _window(L=20)
    head = _head(pairwise, bits.shape[-1])
    x = torch.randn(1, 20, 8)
    masked = torch.zeros_like(valid)
    masked[0, [0, 7, 19]] = True  # also at the window's edges, where a neighbour shift leaves the window
    out = _copy(head, x, bits, desc, valid, masked)
    g = torch.Generator().manual_seed(3)
    pad = 6
    bits_p = torch.cat([bits, torch.rand(1, pad, bits.shape[-1], generator=g) < 0.5], dim=1)
    desc_p = torch.cat([desc, torch.randint(0, 50, (1, pad, desc.shape[-1]), generator=g)], dim=1)
    valid_p = torch.cat([valid, torch.zeros(1, pad, dtype=torch.bool)], dim=1)
    masked_p = torch.cat([masked, torch.rand(1, pad, generator=g) < 0.5], dim=1)
    x_p = torch.cat([x, torch.randn(1, pad, 8, generator=g)], dim=1)
    torch.testing.assert_close(_copy(head, x_p, bits_p, desc_p, valid_p, masked_p)[:, :20], out, rtol=0, atol=1e-5)
    # nothing visible: every beat puts its mass on the null slot and copies nothing
    nothing = _copy(head, x, bits, desc, valid, torch.ones_like(valid))
    assert torch.isfinite(nothing).all() and nothing.abs().max() == 0


def test_pairwise_bias_reads_the_pair_features_of_the_pair_and_of_its_neighbours():
    bits, desc, valid = _window(L=10)
    head = _head(True, bits.shape[-1])
    masked = torch.zeros_like(valid)
    masked[0, 4] = True
    p = pair_features(desc, valid, hidden=masked)[0].float()  # (L, L, f)
    w = head.pair_weight.detach().view(len(PAIR_FEATURE_NAMES), len(NEIGHBOUR_SHIFTS), head.h)
    got = head.bias({"pair_bits": pair_features(desc, valid, hidden=masked)}, valid, torch.float32)[0]  # (h, L, L)
    L = 10
    want = torch.zeros(head.h, L, L)
    for i in range(L):
        for j in range(L):
            for k, s in enumerate(NEIGHBOUR_SHIFTS):
                if 0 <= i + s < L and 0 <= j + s < L:
                    want[:, i, j] += p[i + s, j + s] @ w[:, k, :]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_shift_pairs_moves_along_the_diagonal():
    x = torch.arange(16.0).view(1, 4, 4)
    assert shift_pairs(x, 1)[0, 1, 2] == x[0, 2, 3] and shift_pairs(x, 1)[0, 3, 3] == 0
    assert shift_pairs(x, -1)[0, 2, 3] == x[0, 1, 2] and shift_pairs(x, -1)[0, 0, 1] == 0


@pytest.mark.parametrize("pairwise", [True, False])
def test_a_hand_set_head_copies_the_previous_bar(pairwise):
    """Known answer: attention all on 'one bar back, same beat in bar' copies that beat's bits exactly."""
    bits, desc, valid = _window(L=16, beats_per_bar=4)
    F = bits.shape[-1]
    head = CopyHead(8, F, n_heads=1, d_head=4, n_pair_features=len(PAIR_FEATURE_NAMES) if pairwise else None)
    with torch.no_grad():
        head.qk.weight.zero_()
        head.qk.bias.zero_()
        head.null_logit.fill_(-50.0)
        if pairwise:  # pair_weight columns: shift 0 first, head 0
            head.pair_weight.zero_()
            head.pair_weight[PAIR_FEATURE_NAMES.index("bar_dist_-1"), 0] = 25.0
            head.pair_weight[PAIR_FEATURE_NAMES.index("same_beat_in_bar"), 0] = 25.0
        else:
            head.bar_bias[signed_distance_bucket(torch.tensor(-1), BAR_DISTANCE_EDGES), 0] = 25.0
            head.same_beat_in_bar_bias.fill_(25.0)
        head.scale_on.fill_(3.0)
        head.scale_off.fill_(-3.0)
    masked = torch.zeros_like(valid)
    masked[0, [6, 13]] = True
    out = _copy(head, torch.zeros(1, 16, 8), bits, desc, valid, masked)
    for i in (6, 13):
        torch.testing.assert_close(out[0, i], torch.where(bits[0, i - 4], 3.0, -3.0), rtol=0, atol=1e-4)


@pytest.mark.parametrize("pairwise", [True, False])
def test_training_gradients_reach_every_copy_parameter(pairwise):
    torch.manual_seed(0)
    F, L = 12, 16
    model = BatEncoder(get_config("tiny", n_features=F, pairwise=pairwise))
    bits, desc, valid = _window(L=L, F=F)
    masked = torch.zeros_like(valid)
    masked[0, [2, 7, 9, 14]] = True
    masked_bce(model(bits, desc, valid, masked), bits, masked).backward()
    for name, p in model.copy.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches copy.{name}"
    assert model.embed.weight.grad.abs().sum() > 0  # and the encoder still learns through the copy queries


def test_copy_heads_zero_turns_the_path_off():
    model = BatEncoder(get_config("tiny", n_features=10, copy_heads=0))
    assert model.copy is None
    plain = BatEncoder(get_config("tiny", n_features=10, copy_heads=0, pairwise=False))
    assert abs(model.n_params() - plain.n_params()) / model.n_params() < 0.005


def test_the_encoders_one_pass_pair_projection_equals_each_modules_own():
    torch.manual_seed(0)
    F = 9
    model = BatEncoder(get_config("tiny", n_features=F)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    bits, desc, valid = _window(L=20, F=F)
    masked = torch.zeros_like(valid)
    masked[0, [1, 8, 9]] = True
    shared = model(bits, desc, valid, masked)
    model._project_pairs = lambda pair_bits: {}  # each module projects the pair bits itself
    torch.testing.assert_close(model(bits, desc, valid, masked), shared, rtol=1e-5, atol=1e-5)
