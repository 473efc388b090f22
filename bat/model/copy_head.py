"""The copy path of the output: each beat points at visible beats and copies their raw feature bits.

Why. A masked beat very often repeats another beat of the song (the same beat one bar earlier, the same
groove four bars later), and the cheapest good guess of its 151 bits is "those of that beat". Through the
encoder alone that guess must squeeze every bit it wants to copy through a d_model-wide token (32 in tiny):
the copy-the-previous-bar baseline, which has all the bits, beat the tiny encoder on loss and F1. So, as in a
pointer-generator, the output mixes the encoder's own logits with bits copied from the context:

    a_hij     = softmax_j over {visible j} + {null} of ( q_hi . k_hj / sqrt(d) + bias_hij )
    on_hif    = sum_j a_hij x_jf          copied evidence that bit f is set (x_j: the raw bits of beat j)
    off_hif   = sum_j a_hij (1 - x_jf)    copied evidence that it is not
    logit_if  = head(h_i)_f + sum_h (s_on_hf on_hif + s_off_hf off_hif)

with learned per-feature scales s_on, s_off (a calibrated "P(bit | copied bit)", like the copy baseline's, but
learned and per pointer head). The null slot (learned logit, copies nothing) lets a beat that finds nothing
worth copying put its mass nowhere, and keeps a window whose beats are all masked well defined.

Only visible beats are values: a masked beat (its true bits unknown) and padding are never attended, so a
masked beat's bits cannot reach any masked beat's prediction through this path.

The attention bias is what the encoder's attention already reads, so the pairwise and plain encoders stay a
fair comparison:
- pairwise: a learned per-head weight over the pair features p_ij, and also over p_(i-1)(j-1) and
  p_(i+1)(j+1), the pair features of the neighbours. A masked beat i has no content pair features of its own
  (they are hidden), but "the beat before i is the beat before j, and the beat after i is the one after j"
  (same chord, same bass, same melody, runs of equal bars) is exactly the evidence that i repeats j.
- plain: a learned per-head bias over the bucketed beat and bar distances, as in ``RelativeAttention``, and
  one for "same beat in the bar": the position pair features and none of the content ones, so the gap
  between the two encoders measures what comparing the beats' content adds. (Without the same-beat-in-bar
  term the plain copy head could not line a beat up with its place in a neighbouring bar across meters, and
  lost to the copy-the-previous-bar baseline: held-out loss 29.5 against 29.0; with it, 27.3.)

Legend: b batch, h copy heads, i query beat, j key beat, d head dim, f feature.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from bat.model.attention import bits_matmul, bits_to
from bat.model.pairwise import BAR_DISTANCE_EDGES, BEAT_DISTANCE_EDGES, n_signed_buckets

NEIGHBOUR_SHIFTS = (0, -1, 1)  # pair features of (i + s, j + s) that the pairwise copy bias reads


def shift_pairs(x: Tensor, s: int) -> Tensor:
    """``out[b, i, j] = x[b, i + s, j + s]`` for x (B, L, L, ...), zero where that leaves the window."""
    if s == 0:
        return x
    L = x.shape[1]
    out = torch.zeros_like(x)
    if abs(s) < L:
        if s > 0:
            out[:, : L - s, : L - s] = x[:, s:, s:]
        else:
            out[:, -s:, -s:] = x[:, : L + s, : L + s]
    return out


class CopyHead(nn.Module):
    """Pointer attention over visible beats whose values are their raw bits; returns logits to add."""

    def __init__(self, d_model: int, n_features: int, n_heads: int, d_head: int, n_pair_features: int | None):
        """``n_pair_features`` None: the plain encoder's head (distance bias), else the pairwise one's."""
        super().__init__()
        self.h, self.d = n_heads, d_head
        self.qk = nn.Linear(d_model, 2 * n_heads * d_head)
        self.null_logit = nn.Parameter(torch.zeros(n_heads))  # the "copy nothing" slot
        # A copied set bit starts as +1 logit of evidence, a copied clear bit as -1: a mild prior that
        # repeats are likely, so the pointer gets gradient from the first step.
        self.scale_on = nn.Parameter(torch.ones(n_heads, n_features))  # s_on (h, f)
        self.scale_off = nn.Parameter(-torch.ones(n_heads, n_features))  # s_off (h, f)
        self.pairwise = n_pair_features is not None
        if self.pairwise:
            # (f, shifts * h): one weight per pair feature, neighbour shift and head; zero: no preference at init
            self.pair_weight = nn.Parameter(torch.zeros(n_pair_features, len(NEIGHBOUR_SHIFTS) * n_heads))
        else:
            self.beat_bias = nn.Parameter(torch.zeros(n_signed_buckets(BEAT_DISTANCE_EDGES), n_heads))
            self.bar_bias = nn.Parameter(torch.zeros(n_signed_buckets(BAR_DISTANCE_EDGES), n_heads))
            self.same_beat_in_bar_bias = nn.Parameter(torch.zeros(n_heads))

    def bias(self, ctx: dict[str, Tensor], valid: Tensor, dtype: torch.dtype) -> Tensor:
        """(B, h, L, L) additive attention bias from the pair features or the distance buckets.

        Pairwise: reads ctx["copy_pair"] = pair_bits @ pair_weight if the encoder made it, else makes it.
        """
        if not self.pairwise:
            beat = self.beat_bias[ctx["beat_bucket"]].permute(2, 0, 1)[None]  # (1, h, L, L)
            bar = self.bar_bias[ctx["bar_bucket"]].permute(0, 3, 1, 2)  # (B, h, L, L)
            same = ctx["same_beat_in_bar"][:, None] * self.same_beat_in_bar_bias[None, :, None, None]  # (B, h, L, L)
            return (beat + bar + same).to(dtype)
        B, L = valid.shape
        per_shift = ctx.get("copy_pair")
        if per_shift is None:
            per_shift = bits_matmul(ctx["pair_bits"], self.pair_weight)
        per_shift = per_shift.to(dtype)  # (B, L, L, shifts * h)
        # zero on pairs with padding, so a neighbour shift never reads the (meaningless) positions of padding
        per_shift = per_shift * (valid[:, :, None] & valid[:, None, :])[..., None].to(dtype)
        per_shift = per_shift.view(B, L, L, len(NEIGHBOUR_SHIFTS), self.h)
        bias = sum(shift_pairs(per_shift[..., k, :], s) for k, s in enumerate(NEIGHBOUR_SHIFTS))  # (B, L, L, h)
        return bias.permute(0, 3, 1, 2)

    def forward(self, x: Tensor, bits: Tensor, valid: Tensor, masked: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        """x (B, L, D) final tokens, bits (B, L, F) bool, valid/masked (B, L) bool -> (B, L, F) logits to add."""
        B, L, _ = x.shape
        q, k = self.qk(x).view(B, L, 2, self.h, self.d).permute(2, 0, 3, 1, 4)  # each (B, h, L, d)
        logits = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(self.d) + self.bias(ctx, valid, x.dtype)
        visible = valid & ~masked  # (B, L) the only beats whose bits may be copied
        logits = logits.masked_fill(~visible[:, None, None, :], float("-inf"))  # (B, h, L, L)
        null = self.null_logit.to(x.dtype)[None, :, None, None].expand(B, self.h, L, 1)
        a = torch.cat([logits, null], dim=-1).softmax(dim=-1)[..., :L]  # (B, h, L, L), the null slot dropped
        values = bits_to(bits, x.dtype).masked_fill(~visible[..., None], 0.0)  # (B, L, F), belt and braces
        on = torch.einsum("bhij,bjf->bhif", a, values)  # (B, h, L, F)
        mass = a.sum(-1)  # (B, h, L): on + off, the mass on visible beats
        # s_on on + s_off off = (s_on - s_off) on + s_off mass: one (B, h, L, F) product instead of two
        gain = (self.scale_on - self.scale_off).to(x.dtype)  # (h, F)
        return torch.einsum("bhif,hf->bif", on, gain) + torch.einsum("bhi,hf->bif", mass, self.scale_off.to(x.dtype))


def copy_head_extra_params(n_heads: int, n_pair_features: int) -> int:
    """Parameters the pairwise copy head has beyond the plain one (pair weights instead of position biases)."""
    relative = (n_signed_buckets(BEAT_DISTANCE_EDGES) + n_signed_buckets(BAR_DISTANCE_EDGES) + 1) * n_heads
    return n_pair_features * len(NEIGHBOUR_SHIFTS) * n_heads - relative
