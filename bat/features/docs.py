"""The features table in docs/features.md, generated from the registry so it can never drift from the code.

Regenerate with ``bat features docs --write``; a test fails when the committed file is stale.
"""

from __future__ import annotations

from pathlib import Path

from bat.features.descriptors import DESCRIPTOR_DESCRIPTIONS, DESCRIPTOR_NAMES
from bat.features.registry import FEATURES, GROUPS
from bat.store.layout import SCHEMA_VERSION

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def render() -> str:
    lines = [
        "# Per-beat features",
        "",
        "Generated from `bat/features/registry.py` by `bat features docs --write`; do not edit by hand.",
        "",
        f"Schema version `{SCHEMA_VERSION}`: {len(FEATURES)} binary features and {len(DESCRIPTOR_NAMES)} descriptors",
        "per beat. No feature reads an absolute pitch: harmony is read above the bass, melody as motion.",
        "",
    ]
    column = 0
    for group in GROUPS:
        lines += [f"## {group.name} ({len(group.features)})", "", "| # | feature | meaning |", "|---|---|---|"]
        for feature in group.features:
            lines.append(f"| {column} | `{feature.name}` | {feature.doc} |")
            column += 1
        lines.append("")
    lines += [
        "## Descriptors",
        "",
        "Compact integers per beat from which the model computes pairwise beat features on its device.",
        "",
        "| # | descriptor | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | `{name}` | {DESCRIPTOR_DESCRIPTIONS[name]} |" for k, name in enumerate(DESCRIPTOR_NAMES)]
    from bat.model.pairwise import PAIR_FEATURE_NAMES, pair_feature_table

    lines += [
        "",
        f"## Pairwise beat features ({len(PAIR_FEATURE_NAMES)})",
        "",
        "Computed on the model's device for every pair of beats (i, j) of a window, from the descriptors.",
        "",
        *pair_feature_table(),
    ]
    return "\n".join(lines) + "\n"


def write(path: Path = DOC_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    return path
