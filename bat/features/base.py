"""How a feature is declared: a named, documented column computed by a vectorized group function.

Features come in groups because one pass over a song's notes yields several related bits (all 11 intervals
above the bass at once); each bit still has its own name and one-line meaning, and the docs table is
generated from these declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bat.features.context import BeatContext


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    doc: str


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    features: tuple[Feature, ...]
    compute: Callable[[BeatContext], np.ndarray]  # -> (n_beats, len(features)) bool


GROUPS: list[FeatureGroup] = []


def feature_group(group: str, features: list[tuple[str, str]]):
    """Register ``fn(ctx) -> list of bool arrays`` (one per declared feature, in order) as a feature group."""

    def register(fn: Callable[[BeatContext], list[np.ndarray]]):
        declared = tuple(Feature(name, group, doc) for name, doc in features)

        def compute(ctx: BeatContext) -> np.ndarray:
            columns = fn(ctx)
            if len(columns) != len(declared):
                raise AssertionError(f"{fn.__name__} returned {len(columns)} columns for {len(declared)} features")
            out = np.zeros((ctx.n, len(declared)), bool)
            for k, column in enumerate(columns):
                out[:, k] = column
            return out

        GROUPS.append(FeatureGroup(fn.__name__, declared, compute))
        return fn

    return register
