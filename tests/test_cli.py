"""The command line a user types: every subcommand answers --help, featurize and store info work."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bat import __version__
from bat.cli import app
from tests.midi_builder import N, Piece

runner = CliRunner()


def test_version_and_help_on_every_subcommand():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    for command in (["--help"], ["featurize", "--help"], ["store", "--help"], ["store", "info", "--help"],
                    ["store", "failures", "--help"], ["corpus", "--help"], ["corpus", "music21", "--help"],
                    ["demo", "--help"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output


def test_featurize_then_store_info(tmp_path):
    folder = tmp_path / "midi"
    folder.mkdir()
    Piece(notes=[N(48, b, 1) for b in range(8)] + [N(64, b, 1) for b in range(8)]).write(folder / "a.mid")
    Piece(notes=[N(50, b, 1) for b in range(6)], time_signatures=[(3, 4, 0)]).write(folder / "b.mid")
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00\x00\x90")
    store = str(tmp_path / "store.zarr")
    result = runner.invoke(app, ["featurize", str(folder), "--store", store, "--json", "--workers", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["featurized"] == 2 and sum(summary["failed"].values()) == 1
    result = runner.invoke(app, ["store", "info", store, "--json"])
    info = json.loads(result.output)
    assert info["songs"] == 2 and info["failures"] == 1 and info["beats"] == 8 + 6
    result = runner.invoke(app, ["store", "failures", store])
    assert "broken.mid" in result.output


def test_store_info_on_missing_store_says_what_to_do(tmp_path):
    result = runner.invoke(app, ["store", "info", str(tmp_path / "nope.zarr")])
    assert result.exit_code == 2
    assert "bat featurize" in result.output
