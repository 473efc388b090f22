"""``bat pretrain`` on a tiny synthetic store for a few steps: checkpoints, report.json and the table."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from bat.cli.pretrain import pretrain


def test_pretrain_command_on_a_synthetic_store(tmp_path):
    app = typer.Typer()
    app.command()(pretrain)
    app.command("noop", hidden=True)(lambda: None)  # two commands: typer then expects the command name
    out = tmp_path / "run"
    args = ["pretrain", "--store", "synthetic:12:1", "--steps", "3", "--batch-size", "4", "--max-len", "32"]
    args += ["--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["baselines"]) == {"base_rate", "copy_previous_bar", "plain_encoder"}
    assert (out / "model.pt").exists() and (out / "plain.pt").exists()
    assert "copy_previous_bar" in result.output and "auroc_macro" in result.output


def test_unknown_config_is_a_usage_error(tmp_path):
    app = typer.Typer()
    app.command()(pretrain)
    app.command("noop", hidden=True)(lambda: None)
    result = CliRunner().invoke(app, ["pretrain", "--store", "synthetic:4", "--config", "huge", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown config 'huge'" in result.output
