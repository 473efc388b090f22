"""bench/beats.py's split of lost downbeat F: each way of going wrong is told apart on built grids."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from beats import ErrorTable, downbeat_error, f_measure  # noqa: E402

BEATS = np.arange(0.0, 40.0, 0.5)  # 120 bpm for 40 s: mir_eval ignores the first 5 s
DOWNBEATS = BEATS[::4]  # bars of four


@pytest.mark.parametrize(
    "tracked, downbeats, error",
    [
        (BEATS, BEATS[::4], "right"),
        (BEATS, BEATS[1::4], "phase"),  # bars of four from the second beat
        (BEATS, BEATS[::2], "bar length"),  # bars of two over the right beats
        (BEATS, BEATS[::8], "bar length"),
        (BEATS + 0.25, BEATS[::4] + 0.25, "beats"),  # the off-beat
        (np.arange(0.0, 40.0, 0.75), np.arange(0.0, 40.0, 1.5), "beats"),  # a level at 3:2 to the beat
        (BEATS[::2], BEATS[::4], "right"),  # the half-note level, bars still right: downbeats are what is scored
    ],
)
def test_each_way_of_losing_downbeats_is_told_apart(tracked, downbeats, error):
    beat_f, down_f = f_measure(BEATS, tracked), f_measure(DOWNBEATS, downbeats)
    assert downbeat_error(beat_f, down_f, DOWNBEATS, downbeats) == error


def test_what_each_kind_loses_adds_up_to_one_minus_its_downbeat_f(capsys):
    table = ErrorTable()
    for error, down_f in (("right", 0.9), ("phase", 0.0), ("bar length", 0.67), ("beats", 0.3)):
        table.add("fiddle tune", error, down_f)
    table.print()
    row = capsys.readouterr().out.strip().splitlines()[-1].split("fiddle tune")[1].split()  # n, down F, then lost (share)
    down_f, lost = float(row[1]), [float(value) for value in row[2::2]]
    assert down_f == pytest.approx(np.mean([0.9, 0.0, 0.67, 0.3]), abs=1e-3)
    assert sum(lost) == pytest.approx(1.0 - down_f, abs=2e-3)
    assert row[3::2] == ["(25%)"] * 4
