"""The two attentions of the encoder: the pairwise first layer and the relative-position layers after it.

Legend: b batch, h heads, i query beat, j key beat, d head dim, e pair-embedding dim, f pair feature.

Pairwise layer (layer 0). The pair features p_ij (bits, see ``pairwise.py``) are embedded like the beat bits,
z_ij = p_ij @ W_pair (bias-free), and enter attention three ways (per head h):
    logit_ij = q_i . (k_j + U_k z_ij) / sqrt(d) + w_h . z_ij        (pair-conditioned key + pair bias)
    out_i    = sum_j a_ij (v_j + U_v z_ij)                          (pair-conditioned value)
Neither k_ij nor v_ij is ever built: q_i . U_k z_ij / sqrt(d) + w_h . z_ij = (U_k^T q_i / sqrt(d) + w_h) . z_ij
(one einsum over z for the key term and the bias) and sum_j a_ij U_v z_ij = U_v (sum_j a_ij z_ij), so the
largest float tensors are the attention map (b, h, i, j) and z (b, i, j, e), with e = d_pair small. The bool
pair bits are the only (b, i, j, f) tensor, 1 byte per entry; ``bits_matmul`` never makes a float copy of it.

Relative layers (layer 1...). Plain ``scaled_dot_product_attention`` with an additive float mask: a learned
per-head bias over the bucketed signed beat distance j - i plus one over the bucketed signed bar distance
bar_j - bar_i (T5-style buckets, exact up to 4 then log-spaced), plus -inf on padded keys. We chose this
over RoPE on the beat index because bars are not a fixed number of beats (3/4, 6/8, pickups, meter changes),
and a bar-distance term must see the bar grid; the bias also keeps the plain encoder, which uses it in every
layer, a fair baseline: it sees the same distances that the pair features give the first layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bat.model.pairwise import BAR_DISTANCE_EDGES, BEAT_DISTANCE_EDGES, n_signed_buckets


def bits_to(bits: Tensor, dtype: torch.dtype) -> Tensor:
    """bool -> float; through uint8, ~10x faster than a direct bool cast on CPU."""
    return bits.view(torch.uint8).to(dtype) if bits.dtype == torch.bool else bits.to(dtype)


class _BitsMatmul(torch.autograd.Function):
    """z[b, n] = bits[b, :, n].float() @ weight for a big bool ``bits`` (B, f, N), saving the bool for backward.

    Works a chunk of columns at a time, so at most (f, chunk) floats exist at once: the (B, L, L, f) float
    copy of the pair bits (4x the bool) is never made, in forward or backward.
    """

    @staticmethod
    def forward(ctx, bits: Tensor, weight: Tensor, chunk: int) -> Tensor:
        ctx.save_for_backward(bits, weight)
        ctx.chunk = chunk
        B, _, N = bits.shape
        out = torch.empty(B, N, weight.shape[1], dtype=weight.dtype, device=weight.device)  # (B, N, e)
        for b in range(B):
            for s in range(0, N, chunk):
                out[b, s : s + chunk] = (weight.T @ bits_to(bits[b, :, s : s + chunk], weight.dtype)).T
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        bits, weight = ctx.saved_tensors
        grad_out = grad_out.to(weight.dtype)
        grad_w = torch.zeros_like(weight)  # (f, e)
        for b in range(bits.shape[0]):
            for s in range(0, bits.shape[2], ctx.chunk):
                grad_w += bits_to(bits[b, :, s : s + ctx.chunk], weight.dtype) @ grad_out[b, s : s + ctx.chunk]
        return None, grad_w, None


def bits_matmul(bits: Tensor, weight: Tensor, chunk_elems: int = 1 << 20) -> Tensor:
    """(B, L, L, f) bool @ (f, e) float -> (B, L, L, e), memory-lean; fastest when bits are channels-first in memory."""
    B, L1, L2, f = bits.shape
    planes = bits.movedim(-1, 1).reshape(B, f, L1 * L2)  # free for pair_features' output
    out = _BitsMatmul.apply(planes, weight, max(1, chunk_elems // f))
    return out.view(B, L1, L2, weight.shape[1])


class PairAttention(nn.Module):
    """Self-attention whose logits, keys and values are conditioned on the pair features (layer 0)."""

    def __init__(self, d_model: int, n_heads: int, n_pair_features: int, d_pair: int):
        super().__init__()
        self.h, self.d = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.pair_embed = nn.Parameter(torch.randn(n_pair_features, d_pair) * 0.02)  # W_pair (f, e)
        self.pair_key = nn.Parameter(torch.randn(n_heads, self.d, d_pair) * 0.02)  # U_k (h, d, e)
        self.pair_value = nn.Parameter(torch.randn(n_heads, d_pair, self.d) * 0.02)  # U_v (h, e, d)
        self.pair_bias = nn.Parameter(torch.zeros(d_pair, n_heads))  # w (e, h): the per-head pair bias

    def forward(self, x: Tensor, pair_bits: Tensor, key_pad: Tensor, z: Tensor | None = None) -> Tensor:
        """x (B, L, D), pair_bits (B, L, L, f) bool, key_pad (B, L) bool True on padding -> (B, L, D).

        ``z``: pair_bits @ pair_embed when the caller already made it (the encoder projects the pair bits for
        this layer and its copy head in one pass); else it is computed here.
        """
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.h, self.d).permute(2, 0, 3, 1, 4)  # each (B, h, L, d)
        z = (bits_matmul(pair_bits, self.pair_embed) if z is None else z).to(x.dtype)  # (B, L, L, e)
        scale = 1.0 / math.sqrt(self.d)
        # q_i . U_k z_ij / sqrt(d) + w_h . z_ij = (U_k^T q_i / sqrt(d) + w_h) . z_ij: one pass over z for both
        qz = torch.einsum("bhid,hde->bhie", q, self.pair_key.to(x.dtype)) * scale  # (B, h, L, e)
        qz = qz + self.pair_bias.T.to(x.dtype)[:, None]  # + w_h
        logits = torch.einsum("bhid,bhjd->bhij", q, k) * scale + torch.einsum("bhie,bije->bhij", qz, z)  # (B, h, L, L)
        logits = logits.masked_fill(key_pad[:, None, None, :], float("-inf"))  # (B, h, L, L)
        a = logits.softmax(dim=-1)
        az = torch.einsum("bhij,bije->bhie", a, z)  # (B, h, L, e) attention-weighted pair embedding
        out = torch.einsum("bhij,bhjd->bhid", a, v) + torch.einsum("bhie,hed->bhid", az, self.pair_value.to(x.dtype))
        return self.proj(out.transpose(1, 2).reshape(B, L, -1))  # (B, L, D)


class RelativeAttention(nn.Module):
    """SDPA with a learned per-head bias over bucketed beat and bar distances (layers after the first)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.h, self.d = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.beat_bias = nn.Parameter(torch.zeros(n_signed_buckets(BEAT_DISTANCE_EDGES), n_heads))
        self.bar_bias = nn.Parameter(torch.zeros(n_signed_buckets(BAR_DISTANCE_EDGES), n_heads))

    def forward(self, x: Tensor, beat_bucket: Tensor, bar_bucket: Tensor, key_pad: Tensor) -> Tensor:
        """x (B, L, D), beat_bucket (L, L), bar_bucket (B, L, L) long, key_pad (B, L) bool -> (B, L, D)."""
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.h, self.d).permute(2, 0, 3, 1, 4)  # each (B, h, L, d)
        bias = self.beat_bias[beat_bucket].permute(2, 0, 1)[None] + self.bar_bias[bar_bucket].permute(0, 3, 1, 2)
        bias = bias.masked_fill(key_pad[:, None, None, :], float("-inf")).to(q.dtype)  # (B, h, L, L)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, h, L, d)
        return self.proj(out.transpose(1, 2).reshape(B, L, -1))
