"""The Beat-As-Token encoder: beat bits x B -> pairwise layer -> relative-position layers -> feature logits.

A token is one beat: its binary feature vector times a learnable matrix B (a bias-free linear layer). A
masked beat's token is replaced by a learned [MASK] vector, and its notes are hidden from the pair features
too. Pre-norm residual blocks; the head predicts every feature bit of every beat (through a sigmoid in the
loss), and a copy path (``copy_head.py``, pointer-generator style) adds to those logits the raw bits of the
visible beats each beat points at, so that "this beat repeats that one" needs no squeeze through d_model.
With ``pairwise=False`` every layer is a relative-position layer: the plain baseline (with the same copy
path, biased by distances instead of pair features).

    model = BatEncoder(get_config("tiny", n_features=140))
    logits = model(bits, desc, valid, masked)  # (B, L, n_features)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bat.model.attention import PairAttention, RelativeAttention, bits_matmul, bits_to
from bat.model.config import BatConfig
from bat.model.copy_head import CopyHead, copy_head_extra_params
from bat.model.pairwise import (
    BAR_DISTANCE_EDGES,
    BEAT_DISTANCE_EDGES,
    DESCRIPTOR_NAMES,
    distance_bucket,
    n_signed_buckets,
    pair_features,
)


class MLP(nn.Module):
    def __init__(self, d_model: int, d_hidden: int):
        super().__init__()
        self.fc = nn.Linear(d_model, d_hidden)
        self.out = nn.Linear(d_hidden, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm transformer block; ``pairwise`` picks the first-layer attention."""

    def __init__(self, cfg: BatConfig, pairwise: bool, d_hidden: int):
        super().__init__()
        self.pairwise = pairwise
        self.ln1 = nn.LayerNorm(cfg.d_model)
        if pairwise:
            self.attn = PairAttention(cfg.d_model, cfg.n_heads, cfg.n_pair_features, cfg.d_pair)
        else:
            self.attn = RelativeAttention(cfg.d_model, cfg.n_heads)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg.d_model, d_hidden)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        h = self.ln1(x)
        if self.pairwise:
            h = self.attn(h, ctx["pair_bits"], ctx["key_pad"], z=ctx.get("pair_z"))
        else:
            h = self.attn(h, ctx["beat_bucket"], ctx["bar_bucket"], ctx["key_pad"])
        x = x + self.drop(h)
        return x + self.drop(self.mlp(self.ln2(x)))


def _pairwise_extra_params(cfg: BatConfig) -> int:
    """Parameters the pairwise encoder has beyond the plain one: its first layer and its copy head's bias."""
    d_head = cfg.d_model // cfg.n_heads
    pair = cfg.n_pair_features * cfg.d_pair + 2 * cfg.n_heads * d_head * cfg.d_pair + cfg.d_pair * cfg.n_heads
    relative = (n_signed_buckets(BEAT_DISTANCE_EDGES) + n_signed_buckets(BAR_DISTANCE_EDGES)) * cfg.n_heads
    copy = copy_head_extra_params(cfg.copy_heads, cfg.n_pair_features) if cfg.copy_heads else 0
    return pair - relative + copy


def attention_context(desc: Tensor, valid: Tensor, masked: Tensor, pairwise: bool, relative: bool) -> dict[str, Tensor]:
    """What the attention layers read besides the tokens, computed once per forward for all layers.

    key_pad (B, L) True on padding; pair_bits (B, L, L, n_pair) for the pairwise layer; beat_bucket (L, L)
    and bar_bucket (B, L, L), the bucketed signed distances, for the relative-position layers, and
    same_beat_in_bar (B, L, L) bool for the plain encoder's copy head.
    """
    ctx = {"key_pad": ~valid}
    if pairwise:
        ctx["pair_bits"] = pair_features(desc, valid, hidden=masked)
    if relative:
        idx = torch.arange(desc.shape[1], device=desc.device)
        bar = desc[..., DESCRIPTOR_NAMES.index("bar_index")]  # (B, L)
        ctx["beat_bucket"] = distance_bucket(idx[None, :] - idx[:, None], BEAT_DISTANCE_EDGES)  # (L, L)
        ctx["bar_bucket"] = distance_bucket(bar[:, None, :] - bar[:, :, None], BAR_DISTANCE_EDGES)  # (B, L, L)
        pos = desc[..., DESCRIPTOR_NAMES.index("beat_in_bar")]  # (B, L)
        ctx["same_beat_in_bar"] = pos[:, :, None] == pos[:, None, :]  # (B, L, L)
    return ctx


class BatEncoder(nn.Module):
    def __init__(self, cfg: BatConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.n_features, cfg.d_model, bias=False)  # the matrix B: bits -> token
        self.mask_token = nn.Parameter(torch.randn(cfg.d_model) * 0.02)  # [MASK]
        d_hidden = cfg.mlp_ratio * cfg.d_model
        # The plain encoder's first MLP is widened by as many hidden units (2 * d_model + 1 parameters each)
        # as the pair projections (first layer and copy head) cost, so that both encoders have (nearly) the same
        # parameter count.
        extra = 0 if cfg.pairwise or not cfg.match_params else _pairwise_extra_params(cfg) // (2 * cfg.d_model + 1)
        self.blocks = nn.ModuleList(
            Block(cfg, pairwise=cfg.pairwise and n == 0, d_hidden=d_hidden + (extra if n == 0 else 0))
            for n in range(cfg.n_layers)
        )
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.n_features)  # logits of every feature bit
        # the copy path: logits from the raw bits of the visible beats each beat points at (None: no copy path)
        n_pair = cfg.n_pair_features if cfg.pairwise else None
        self.copy = None
        if cfg.copy_heads:
            self.copy = CopyHead(cfg.d_model, cfg.n_features, cfg.copy_heads, cfg.copy_dim, n_pair)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _project_pairs(self, pair_bits: Tensor) -> dict[str, Tensor]:
        """The pair bits times the first layer's pair embedding and the copy head's pair weights, in one pass.

        One ``bits_matmul`` over the (B, L, L, f) bool pair bits instead of two: reading and widening those
        bits is most of the pairwise encoder's cost on a CPU.
        """
        first = self.blocks[0].attn
        weights = [first.pair_embed] + ([self.copy.pair_weight] if self.copy is not None else [])
        proj = bits_matmul(pair_bits, torch.cat(weights, dim=1))  # (B, L, L, e + shifts * h)
        z, copy = proj.split([first.pair_embed.shape[1], proj.shape[-1] - first.pair_embed.shape[1]], dim=-1)
        return {"pair_z": z, "copy_pair": copy} if self.copy is not None else {"pair_z": z}

    def forward(self, bits: Tensor, desc: Tensor, valid: Tensor, masked: Tensor | None = None) -> Tensor:
        """Feature logits of every beat.

        bits (B, L, n_features) bool, desc (B, L, n_descriptors) int64 in DESCRIPTOR_NAMES order,
        valid (B, L) bool (False on padding), masked (B, L) bool (True: beat replaced by [MASK]).
        Returns (B, L, n_features) logits; rows of padding are meaningless.
        """
        L = bits.shape[1]
        if L > self.cfg.max_len:
            raise ValueError(f"window of {L} beats is longer than max_len={self.cfg.max_len}; cut it into windows")
        masked = torch.zeros_like(valid) if masked is None else masked & valid
        x = self.embed(bits_to(bits, self.embed.weight.dtype))  # (B, L, D)
        x = torch.where(masked[..., None], self.mask_token.to(x.dtype), x)
        relative = not self.cfg.pairwise or self.cfg.n_layers > 1  # some layer reads the distance buckets
        ctx = attention_context(desc, valid, masked, pairwise=self.cfg.pairwise, relative=relative)
        if self.cfg.pairwise:
            ctx.update(self._project_pairs(ctx["pair_bits"]))
        for block in self.blocks:
            x = block(x, ctx)
        x = self.ln_f(x)
        logits = self.head(x)  # (B, L, n_features)
        if self.copy is not None:
            logits = logits + self.copy(x, bits, valid, masked, ctx)  # bits copied from visible beats
        return logits
