"""Shared fixtures of the model tests: stores of synthetic songs (``bat.data.synthetic``) small enough for
seconds-long training runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # ``tests.midi_builder`` etc. under a bare ``pytest`` (no cwd on sys.path)
    sys.path.insert(0, str(ROOT))

from bat.data.synthetic import SyntheticStore  # noqa: E402


@pytest.fixture(scope="session")
def small_store() -> SyntheticStore:
    """24 short songs (8 to 16 bars): a few windows each at max_len=32."""
    return SyntheticStore(24, seed=1, min_bars=8, max_bars=16)
