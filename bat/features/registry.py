"""The one list of per-beat features, in store column order. Everything else imports names from here."""

from __future__ import annotations

import hashlib

import numpy as np

# Importing a group module registers its features; this order is the store's column order.
from bat.features import meter  # noqa: F401, I001
from bat.features import harmony  # noqa: F401
from bat.features import melody  # noqa: F401
from bat.features import texture  # noqa: F401
from bat.features import drums  # noqa: F401
from bat.features import instruments  # noqa: F401
from bat.features.base import GROUPS, Feature, FeatureGroup
from bat.features.context import BeatContext

FEATURES: list[Feature] = [feature for group in GROUPS for feature in group.features]
FEATURE_NAMES: list[str] = [feature.name for feature in FEATURES]
FEATURE_GROUPS: list[str] = [group.name for group in GROUPS]

if len(set(FEATURE_NAMES)) != len(FEATURE_NAMES):
    raise RuntimeError("two features share a name")


def compute_features(ctx: BeatContext) -> np.ndarray:
    """(n_beats, n_features) bool, columns in FEATURE_NAMES order."""
    if ctx.n == 0:
        return np.zeros((0, len(FEATURES)), bool)
    return np.concatenate([group.compute(ctx) for group in GROUPS], axis=1)


def features_digest() -> str:
    """Short hash of the feature and descriptor names: part of the schema version."""
    from bat.features.descriptors import DESCRIPTOR_NAMES

    text = "\n".join([*FEATURE_NAMES, "--", *DESCRIPTOR_NAMES])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


__all__ = ["FEATURES", "FEATURE_GROUPS", "FEATURE_NAMES", "Feature", "FeatureGroup", "compute_features"]
