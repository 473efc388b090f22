"""A fixed subset of the music21 corpus for the demo and the tests: varied meters and textures, quick to build.

    from bat.corpus.demo import build_demo_corpus
    manifest = build_demo_corpus("data/demo-corpus")           # ~180 pieces, 25-55 s on 2 cores
    manifest = build_demo_corpus(tmp_dir, size="test")         # ~35 pieces, 7-12 s on 2 cores

The choice is deterministic (rules over the bundled corpus, spread evenly over each collection, plus a few
named pieces), so two machines with the same music21 build the same files. Building again is a no-op.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from bat.corpus.manifest import MANIFEST_NAME
from bat.corpus.music21_corpus import ConvertConfig, Piece, convert_pieces, corpus_root, list_pieces


@dataclass(frozen=True)
class DemoSpec:
    """How many pieces of each kind a subset takes."""

    analysed_chorales: int  # chorales with a bundled Roman-numeral analysis, in Riemenschneider order
    chorales: int  # further chorales spread over the collection (two in three start with a pickup)
    essen_by_meter: dict[str, int]  # Essen folk songs per written meter ("none": unmetered, irregular bars)
    fiddle_tunes: int  # each of O'Neill's 1850, Ryan's Mammoth and Aird's Airs (jigs, reels, hornpipes)
    palestrina: int  # five-voice mass movements in 4/2
    named: tuple[str, ...] = field(default=())  # meter changes, a quartet movement, a madrigal...


SIZES: dict[str, DemoSpec] = {
    "demo": DemoSpec(
        analysed_chorales=20,
        chorales=40,
        essen_by_meter={"2/4": 16, "3/4": 16, "4/4": 12, "6/8": 12, "3/8": 6, "4/2": 4, "none": 4, "6/4": 3,
                        "3/2": 3, "2/2": 3, "5/8": 2},
        fiddle_tunes=8,
        palestrina=6,
        named=(
            "oneills1850/0051-0100.abc#89",  # 3/4 and 3/8 alternate
            "oneills1850/0201-0300.abc#264",  # 5/4 then 6/8
            "oneills1850/0951-0981.abc#964",  # 6/8 then 9/8
            "oneills1850/1801-1850.abc#1850",  # C, 3/4, C
            "mozart/k80/movement3.mxl",  # string quartet minuet
            "haydn/opus1no1/movement2.mxl",  # string quartet minuet
            "monteverdi/madrigal.3.1.mxl",  # five voices, with a Roman-numeral analysis
            "josquin/milleRegrets.abc",  # four voices, one ABC tune per voice
            "trecento/Fava_Dicant_nunc_iudei.xml",
            "schumann_robert/dichterliebe_no2.xml",  # voice and piano
            "joplin/maple_leaf_rag.mxl",  # syncopation
        ),
    ),
    "test": DemoSpec(
        analysed_chorales=2,  # riemenschneider001 = bwv269: 3/4, one-beat pickup, a repeat
        chorales=5,
        essen_by_meter={"2/4": 4, "3/4": 4, "4/4": 3, "6/8": 3, "3/8": 1, "6/4": 1, "2/2": 1, "none": 1},
        fiddle_tunes=2,
        palestrina=1,
        named=(
            "oneills1850/0051-0100.abc#89",  # 3/4 and 3/8 alternate
            "oneills1850/1801-1850.abc#1850",  # C, 3/4, C
        ),
    ),
}


def demo_pieces(size: str = "demo") -> list[Piece]:
    """The pieces of a subset, in a stable order without duplicates."""
    if size not in SIZES:
        raise ValueError(f"unknown demo corpus size {size!r}; choose one of {sorted(SIZES)}")
    spec = SIZES[size]
    pieces = list_pieces()
    by_source = {p.source: p for p in pieces}
    chosen: list[Piece] = []

    bach = [p for p in pieces if p.collection == "bach"]
    analysed = sorted((p for p in bach if p.analysis), key=lambda p: p.analysis)
    chosen += analysed[: spec.analysed_chorales]
    chosen += _spread([p for p in bach if not p.analysis], spec.chorales)

    meters = _essen_meters()
    essen = [p for p in pieces if p.collection == "essenFolksong"]
    for meter, n in spec.essen_by_meter.items():
        chosen += _spread([p for p in essen if meters.get(p.source) == meter], n)

    for collection in ("oneills1850", "ryansMammoth", "airdsAirs"):
        chosen += _spread([p for p in pieces if p.collection == collection], spec.fiddle_tunes)
    chosen += _spread([p for p in pieces if p.collection == "palestrina"], spec.palestrina)
    chosen += [by_source[s] for s in spec.named if s in by_source]  # tolerate another music21's corpus
    return list(dict.fromkeys(chosen))


def build_demo_corpus(out_dir: str | os.PathLike, size: str = "demo", workers: int | None = None) -> Path:
    """Convert the subset into ``out_dir`` (skipping what is already there); the manifest's path."""
    out_dir = Path(out_dir)
    convert_pieces(demo_pieces(size), out_dir, ConvertConfig(workers=workers))
    return out_dir / MANIFEST_NAME


def _spread(pieces: list[Piece], n: int) -> list[Piece]:
    """``n`` pieces evenly spaced over the list (the whole list when it is shorter)."""
    if n >= len(pieces):
        return list(pieces)
    return [pieces[i * len(pieces) // n] for i in range(n)]


def _essen_meters() -> dict[str, str]:
    """Source -> first written meter (``M:`` field) of every Essen tune, read from the ABC text."""
    meters = {}
    root = corpus_root()
    for file in sorted((root / "essenFolksong").glob("*.abc")):
        rel = file.relative_to(root).as_posix()
        number = None
        for line in file.read_text(encoding="latin-1").split("\n"):
            line = line.strip()
            if line.startswith("X:"):
                try:
                    number = int(line[2:].strip())
                except ValueError:
                    number = None
            elif line.startswith("M:") and number is not None:
                meters.setdefault(f"{rel}#{number}", re.sub(r"\s+", "", line[2:]))
    return meters
