"""MLflow tracking and the model registry against a real SQLite store in a temp folder: what a run records,
champion/challenger by validation loss, loading ``models:/bat-encoder@champion``, ``bat models list/show``,
and one short DeepSpeed run on the CPU (its first use JIT-builds a comm op: the slowest test here)."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from bat.cli import app
from bat.data.synthetic import SyntheticStore
from bat.registry.models import register_encoder
from bat.registry.tracking import dataset_identity, log_training_run
from bat.train import PretrainConfig, load_encoder, run_pretrain


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def store() -> SyntheticStore:
    return SyntheticStore(16, seed=1, min_bars=8, max_bars=16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, store):
    """A tiny encoder trained for 3 steps, its run logged to a fresh SQLite tracking store."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    cfg = PretrainConfig(store="synthetic:16:1", model="tiny", steps=3, batch_size=4, max_len=32, log_every=1)
    out = root / "run"
    report = run_pretrain(cfg, out, compare_plain=False, store=store)
    run_id = log_training_run(report, cfg, out, store=store, tracking_uri=uri, ds_config={"zero_optimization": {}})
    return {"uri": uri, "root": root, "cfg": cfg, "out": out, "report": report, "run_id": run_id}


@pytest.fixture(scope="module")
def registered(trained):
    """Three versions of the same checkpoint, registered with validation losses 1.0, 2.0, then 0.5."""
    mlflow.set_tracking_uri(trained["uri"])
    return [register_encoder(trained["out"] / "model.pt", trained["run_id"], loss) for loss in (1.0, 2.0, 0.5)]


def test_the_run_records_config_dataset_and_artifacts(trained, store):
    run = MlflowClient(trained["uri"]).get_run(trained["run_id"])
    assert run.data.params["model"] == "tiny" and run.data.params["steps"] == "3"
    assert run.data.params["model_config.d_model"] == "32"
    assert run.data.tags["dataset.store"] == "synthetic:16:1"
    assert run.data.tags["dataset.schema_version"] == "synthetic-1"
    assert run.data.tags["git_commit"]
    assert run.data.params["data.n_songs"] == "16"
    assert run.data.params["data.n_beats"] == str(int(store.songs["n_beats"].sum()))
    assert run.data.metrics["val_loss"] == pytest.approx(trained["report"]["model"]["loss"])
    assert "train_loss" in run.data.metrics
    artifacts = {a.path for a in MlflowClient(trained["uri"]).list_artifacts(trained["run_id"])}
    assert {"report.json", "dataset.json", "pretrain_config.json", "deepspeed.json", "docs"} <= artifacts
    assert (trained["root"] / "artifacts").is_dir()  # artifacts beside the SQLite file, not in the checkout


def test_dataset_digest_ignores_song_order(store):
    shuffled = SyntheticStore(16, seed=1, min_bars=8, max_bars=16)
    shuffled.songs = shuffled.songs.iloc[::-1].reset_index(drop=True)
    assert dataset_identity(shuffled, "x")["content_digest"] == dataset_identity(store, "x")["content_digest"]
    other = SyntheticStore(15, seed=1, min_bars=8, max_bars=16)
    assert dataset_identity(other, "x")["content_digest"] != dataset_identity(store, "x")["content_digest"]


def test_champion_moves_only_to_a_lower_validation_loss(trained, registered):
    first, second, third = registered
    assert (first["alias"], first["champion_version"]) == ("champion", None)
    assert (second["alias"], second["champion_version"], second["champion_val_loss"]) == ("challenger", "1", 1.0)
    assert (third["alias"], third["champion_version"]) == ("champion", "1")
    client = MlflowClient(trained["uri"])
    assert str(client.get_model_version_by_alias("bat-encoder", "champion").version) == "3"
    assert str(client.get_model_version_by_alias("bat-encoder", "challenger").version) == "2"
    v2 = client.get_model_version("bat-encoder", "2")
    assert v2.tags["val_loss"] == "2.0" and v2.tags["model"] == "tiny" and v2.tags["compared_with"].startswith("v1")
    logged = client.download_artifacts(trained["run_id"], "registry_comparison.json", str(trained["root"]))
    assert json.loads(open(logged).read())["version"] == "3"  # the last comparison of this run


def test_champion_loads_with_pyfunc_and_predicts_masked_beats(trained, registered, store):
    mlflow.set_tracking_uri(trained["uri"])
    model = mlflow.pyfunc.load_model("models:/bat-encoder@champion")
    arrays = store.song_arrays(0)
    L = 20
    bits = arrays.features[None, :L].astype(bool)  # (1, L, F)
    desc = arrays.descriptors[None, :L].astype(np.int64)  # (1, L, D), the synthetic store is in DESCRIPTOR_NAMES order
    valid = np.ones((1, L), bool)
    masked = np.zeros((1, L), bool)
    masked[0, [3, 11]] = True
    prob = np.asarray(model.predict({"bits": bits, "desc": desc, "valid": valid, "masked": masked}))
    assert prob.shape == (1, L, len(store.feature_names)) and ((prob > 0) & (prob < 1)).all()
    encoder = load_encoder(trained["out"] / "model.pt").eval()
    with torch.no_grad():
        t = [torch.from_numpy(a) for a in (bits, desc, valid, masked)]
        expected = torch.sigmoid(encoder(*t)).numpy()
    np.testing.assert_allclose(prob, expected, rtol=1e-5, atol=1e-6)


def test_models_cli_lists_and_shows_versions(trained, registered):
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--tracking-uri", trained["uri"]])
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.output.splitlines() if "│" in line]
    row = {line.split("│")[1].strip(): line for line in lines if line.split("│")[1].strip().isdigit()}
    assert set(row) == {"1", "2", "3"}
    assert "champion" in row["3"] and "challenger" in row["2"] and "0.5" in row["3"]
    shown = runner.invoke(app, ["models", "show", "@champion", "--tracking-uri", trained["uri"]])
    assert shown.exit_code == 0, shown.output
    assert "bat-encoder version 3" in shown.output and "aliases: champion" in shown.output
    by_number = runner.invoke(app, ["models", "show", "2", "--tracking-uri", trained["uri"]])
    assert "aliases: challenger" in by_number.output and "tag val_loss: 2.0" in by_number.output
    missing = runner.invoke(app, ["models", "show", "@nobody", "--tracking-uri", trained["uri"]])
    assert missing.exit_code == 1


def test_pretrain_with_deepspeed_logs_and_registers(tmp_path, monkeypatch):
    """``bat pretrain --deepspeed --register``: one process, gloo, ZeRO-1, fp32 on the CPU."""
    from bat.train.deepspeed_engine import single_process_env

    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    env = single_process_env()
    assert env["RANK"] == "0" and env["WORLD_SIZE"] == "1"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("BAT_MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    args = ["pretrain", "--store", "synthetic:12:1", "--steps", "3", "--batch-size", "2", "--max-len", "32"]
    args += ["--no-compare-plain", "--deepspeed", "--zero-stage", "1", "--register", "--out", str(out)]
    try:
        result = CliRunner().invoke(app, args)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    ds = report["train"]["deepspeed"]
    assert ds["zero_optimization"]["stage"] == 1 and not ds["bf16"]["enabled"]
    assert ds["train_micro_batch_size_per_gpu"] == 2 and ds["gradient_clipping"] == 1.0
    assert report["train"]["history"][-1]["step"] == 3
    assert "bat-encoder version 1 is the champion" in " ".join(result.output.split())  # rich wraps lines
    client = MlflowClient(uri)
    v = client.get_model_version_by_alias("bat-encoder", "champion")
    run = client.get_run(v.run_id)
    assert run.data.tags["deepspeed"] == "true"
    assert "deepspeed.json" in {a.path for a in client.list_artifacts(v.run_id)}
