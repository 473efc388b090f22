"""The Beat-As-Token encoder: configs, pairwise beat features and the model.

``pairwise`` (the pair features and their names), ``attention`` (pairwise and relative attention),
``copy_head`` (the output's copy path: bits copied from the visible beats a beat points at), ``encoder``
(the model), ``config`` (sizes).
"""

from bat.model.config import CONFIGS, BatConfig, get_config
from bat.model.encoder import BatEncoder
from bat.model.pairwise import DESCRIPTOR_NAMES, N_PAIR, PAIR_FEATURE_NAMES, pair_features

__all__ = [
    "CONFIGS",
    "DESCRIPTOR_NAMES",
    "N_PAIR",
    "PAIR_FEATURE_NAMES",
    "BatConfig",
    "BatEncoder",
    "get_config",
    "pair_features",
]
