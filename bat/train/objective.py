"""Masked-beat pretraining: which beats to hide, and the loss on them.

Hide 15% of the beats (or whole bars, ``span="bar"``) behind the [MASK] token and predict every feature bit
of each hidden beat through a sigmoid: loss = sum over features of the binary cross-entropy, averaged over
the masked beats.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from bat.model.pairwise import DESCRIPTOR_NAMES

SPANS = ("beat", "bar")


def mask_beats(
    valid: Tensor, desc: Tensor, rate: float = 0.15, span: str = "beat", generator: torch.Generator | None = None
) -> Tensor:
    """(B, L) bool: the beats to hide. Every window with a beat gets at least one masked beat.

    span="beat": each real beat independently with probability ``rate``; span="bar": each bar (all its beats)
    with probability ``rate``. Random numbers come from ``generator`` on the CPU, so a seed fixes the masks
    whatever the model's device.
    """
    if span not in SPANS:
        raise ValueError(f"mask span must be one of {SPANS}, got {span!r}")
    B, L = valid.shape
    if span == "beat":
        masked = torch.rand(B, L, generator=generator) < rate
    else:
        bar = desc[..., DESCRIPTOR_NAMES.index("bar_index")].cpu()  # (B, L)
        bar = (bar - bar.min(dim=1, keepdim=True).values).clamp(min=0)  # 0-based within the window
        drawn = torch.rand(B, int(bar.max()) + 1, generator=generator) < rate  # (B, n_bars)
        masked = torch.gather(drawn, 1, bar)
    valid_cpu = valid.cpu()
    masked &= valid_cpu
    empty = ~masked.any(dim=1) & valid_cpu.any(dim=1)  # windows where nothing was drawn: mask one beat
    if empty.any():
        pick = (torch.rand(B, L, generator=generator) * valid_cpu).argmax(dim=1)  # a random real beat
        masked[empty, pick[empty]] = True
    return masked.to(valid.device)


def masked_bce(logits: Tensor, bits: Tensor, masked: Tensor) -> Tensor:
    """Sum of per-feature BCE on the masked beats, mean over them. logits/bits (B, L, F), masked (B, L)."""
    target = bits[masked].to(logits.dtype)  # (M, F)
    return F.binary_cross_entropy_with_logits(logits[masked].float(), target.float(), reduction="none").sum(-1).mean()
