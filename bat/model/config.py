"""Encoder sizes. ``CONFIGS`` holds the named presets that ``bat pretrain --config`` accepts."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bat.model.pairwise import N_PAIR


@dataclass
class BatConfig:
    n_features: int = 140  # beat feature bits; always overwritten with the store's count
    n_layers: int = 2  # transformer blocks; the first one is the pairwise layer when pairwise=True
    d_model: int = 32  # width of a beat token
    n_heads: int = 2  # attention heads; d_model must divide by it
    d_pair: int = 8  # width of the pair embedding z_ij that the first layer reads (pair features -> d_pair)
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * d_model
    dropout: float = 0.0  # on the residual branches
    max_len: int = 512  # longest window of beats; longer songs are cut into windows
    pairwise: bool = True  # False: the plain encoder (relative-position attention in every layer)
    n_pair_features: int = N_PAIR  # pair feature channels, len(PAIR_FEATURE_NAMES)
    copy_heads: int = 4  # pointer heads of the copy path (``copy_head.py``); 0: logits from the token alone
    copy_dim: int = 8  # query/key width of each copy head
    match_params: bool = True  # plain encoder: widen its first MLP so its size matches the pairwise one

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")

    @classmethod
    def from_saved(cls, saved: dict) -> BatConfig:
        """The config stored with a checkpoint. Checkpoints from before the copy path lack ``copy_heads``:
        they are models without it, so 0 rebuilds them exactly."""
        return cls(**{"copy_heads": 0, **saved})


CONFIGS: dict[str, BatConfig] = {
    "tiny": BatConfig(n_layers=2, d_model=32, n_heads=2, d_pair=8),
    "small": BatConfig(n_layers=4, d_model=128, n_heads=4, d_pair=16),
    "base": BatConfig(n_layers=8, d_model=384, n_heads=6, d_pair=32),
}


# Peak learning rate of each preset (``PretrainConfig.lr`` unset). tiny on the demo corpus, 300 steps, held-out
# loss of the pairwise encoder: 24.8 at 1e-3, 22.4 at 2e-3, 21.9 at 3e-3. small and base: the usual smaller
# rates for wider, deeper transformers, not yet tuned.
PRESET_LR: dict[str, float] = {"tiny": 3e-3, "small": 1e-3, "base": 3e-4}


def get_config(name: str, **overrides) -> BatConfig:
    """A copy of the preset ``name`` with fields replaced, e.g. ``get_config('tiny', n_features=134)``."""
    if name not in CONFIGS:
        raise ValueError(f"unknown model config {name!r}; choose one of {', '.join(CONFIGS)}")
    return replace(CONFIGS[name], **overrides)
