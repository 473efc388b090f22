"""Training as users launch it, in real processes: two CPU ranks under the ``deepspeed`` launcher with ZeRO-2,
and a ``bat pretrain`` killed with SIGKILL, then resumed with ``--resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from bat.train.deepspeed_engine import free_port

BIN = Path(sys.executable).parent


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", OMP_NUM_THREADS="1")
    return env


def test_two_cpu_ranks_with_zero2_train_register_and_report(tmp_path, store_path):
    out = tmp_path / "run"
    command = [str(BIN / "deepspeed"), "--num_gpus", "2", "--no_local_rank", "--master_port", str(free_port())]
    command += ["--module", "bat.cli", "pretrain", "--store", store_path, "--steps", "4", "--batch-size", "2"]
    command += ["--max-len", "32", "--zero-stage", "2", "--no-compare-plain", "--out", str(out)]
    done = subprocess.run(command, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["train"]["world_size"] == 2
    ds = report["train"]["deepspeed"]
    assert ds["zero_optimization"]["stage"] == 2 and ds["train_batch_size"] == 2 * 2
    assert [e["step"] for e in report["train"]["history"]][-1] == 4
    assert report["eval"]["n_scored_beats"] > 0  # both ranks' shares of the validation windows, gathered
    assert done.stdout.count("bat-encoder version 1 is the champion") == 1  # rank 0 alone registers and prints
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(client.get_model_version_by_alias("bat-encoder", "champion").run_id)
    assert run.data.tags["world_size"] == "2"


def _latest_step(folder: Path) -> int:
    latest = folder / "latest"
    return int(latest.read_text().removeprefix("step")) if latest.exists() else 0


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, store_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "bat.cli", "pretrain", "--store", store_path, "--steps", "300", "--batch-size", "2"]
    args += ["--max-len", "32", "--checkpoint-every", "10", "--no-compare-plain", "--no-register", "--out", str(out)]
    env = _env(tmp_path)
    child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = out / "checkpoints" / "model"
    deadline = time.monotonic() + 300
    while _latest_step(folder) < 20 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed_at = _latest_step(folder)
    assert 20 <= killed_at < 300, f"the run was not killed mid-training (last checkpoint: step {killed_at})"
    assert not (out / "report.json").exists()
    run_id = json.loads((out / "mlflow_run.json").read_text())["run_id"]

    done = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    resumed_at = report["train"]["resumed_at"]["model"]
    assert resumed_at >= killed_at - 10 and resumed_at % 10 == 0  # the newest complete checkpoint
    steps = [e["step"] for e in report["train"]["history"]]
    assert steps[0] > resumed_at and steps[-1] == 300  # continued, not restarted
    assert torch.load(out / "model.pt", weights_only=True)["step"] == 300
    assert json.loads((out / "mlflow_run.json").read_text())["run_id"] == run_id  # the same MLflow run goes on
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert client.get_run(run_id).info.status == "FINISHED"
