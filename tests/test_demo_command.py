"""``bat demo``, the README's main command, end to end in its own process on embedded defaults: the test
corpus -> the train-encoder flow (Prefect's embedded API, a local Dask cluster, DeepSpeed on the CPU) -> the
SQLite MLflow store -> ``bat-encoder`` version 1, champion. A second run finds nothing new and says so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow
BAT = Path(sys.executable).parent / "bat"


def test_demo_featurizes_trains_registers_and_then_has_nothing_new(tmp_path, demo_corpus):
    data = tmp_path / "data"
    shutil.copytree(demo_corpus.parent, data / "corpus")  # already converted: the demo skips the conversion
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BAT_"))}
    env.update(BAT_DATA_DIR=str(data), BAT_PREFECT_HOME=str(tmp_path / "prefect"), OMP_NUM_THREADS="1",
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    command = [str(BAT), "demo", "--size", "test", "--steps", "4", "--workers", "1"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = " ".join(first.stdout.split())
    assert "bat-encoder version 1 is the champion" in out
    for row in ("encoder", "plain_encoder", "base_rate", "copy_previous_bar"):
        assert row in out
    assert "mlflow server" in out and "bat server" in out and "http://127.0.0.1:4200" in out
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert str(client.get_model_version_by_alias("bat-encoder", "champion").version) == "1"
    assert (tmp_path / "mlflow" / "artifacts").is_dir()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "nothing to do: no new data and no code change" in " ".join(again.stdout.split())
    assert len(client.search_model_versions("name='bat-encoder'")) == 1
