"""Against a real ``mlflow server`` process on loopback (SQLite behind it, artifacts proxied by the server):
``bat pretrain`` logs and registers through HTTP, and ``bat models`` and ``mlflow.pyfunc`` read it back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from bat.cli import app
from bat.train.deepspeed_engine import free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "art")]
    command += ["--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(root / "server.log", "w")
    child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield {"url": url, "root": root}
    child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
    log.close()


def test_pretrain_logs_and_registers_through_a_tracking_server(server, store_path, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server["url"])
    out = tmp_path / "run"
    args = ["pretrain", "--store", store_path, "--steps", "3", "--batch-size", "2", "--max-len", "32"]
    result = CliRunner().invoke(app, [*args, "--no-compare-plain", "--out", str(out)])
    assert result.exit_code == 0, result.output
    client = MlflowClient(server["url"])
    version = client.get_model_version_by_alias("bat-encoder", "champion")
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED" and "val_loss" in run.data.metrics
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # artifacts went through the server...
    assert any((server["root"] / "art").rglob("report.json"))  # ...into its artifact store
    listed = CliRunner().invoke(app, ["models", "list", "--tracking-uri", server["url"]])
    assert listed.exit_code == 0 and "champion" in listed.output
    mlflow.set_tracking_uri(server["url"])
    model = mlflow.pyfunc.load_model("models:/bat-encoder@champion")
    song = model.unwrap_python_model().song_outputs(store=store_path, song=0)
    assert song["probabilities"].shape[0] == song["embeddings"].shape[0] > 0
    assert np.isfinite(song["probabilities"]).all()
