"""MLflow tracking and the model registry against a real SQLite store in a temp folder, on a store featurized
from real (generated multitrack) MIDI files: what a run records while it trains, champion/challenger on the
same validation beats, loading ``models:/bat-encoder@champion`` and asking it about a MIDI file or a store
song, ``bat models list/show``, and ``bat pretrain`` end to end."""

from __future__ import annotations

import json
import os

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from bat.cli import app
from bat.data.synthetic import SyntheticStore
from bat.registry.models import register_encoder
from bat.registry.pipeline import heldout_loss_fn, train_and_register
from bat.registry.tracking import dataset_identity
from bat.store import open_store
from bat.train import PretrainConfig, load_encoder


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A fresh SQLite tracking store for this module, as MLFLOW_TRACKING_URI."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield {"uri": uri, "root": root}
    os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture(scope="module")
def trained(tracking, store_path):
    """A tiny encoder trained for 6 steps (held-out evaluation at step 3), tracked and registered."""
    cfg = PretrainConfig(store=store_path, model="tiny", steps=6, batch_size=4, max_len=32, log_every=2, eval_every=3)
    out = tracking["root"] / "run"
    outcome = train_and_register(cfg, out, compare_plain=False, tags={"purpose": "test"})
    return {**tracking, "cfg": cfg, "out": out, "outcome": outcome, "run_id": outcome.run_id}


@pytest.fixture(scope="module")
def registered(trained):
    """Three more versions of the same checkpoint, registered with validation losses 1.0, 2.0, then 0.5."""
    mlflow.set_tracking_uri(trained["uri"])
    return [register_encoder(trained["out"] / "model.pt", trained["run_id"], loss) for loss in (1.0, 2.0, 0.5)]


def test_the_run_records_config_dataset_metrics_per_interval_and_artifacts(trained, store_path):
    client = MlflowClient(trained["uri"])
    run = client.get_run(trained["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["model"] == "tiny" and run.data.params["steps"] == "6"
    assert run.data.params["model_config.d_model"] == "32"
    assert run.data.params["zero_stage"] == "0"
    assert run.data.tags["dataset.store"] == store_path and run.data.tags["purpose"] == "test"
    assert run.data.tags["dataset.schema_version"] == str(open_store(store_path).schema_version)
    assert run.data.tags["git_commit"] and run.data.tags["deepspeed"] == "true"
    assert run.data.params["data.n_songs"] == "14"
    assert run.data.metrics["val_loss"] == pytest.approx(trained["outcome"].report["model"]["loss"])
    assert [m.step for m in client.get_metric_history(trained["run_id"], "train_loss")] == [2, 4, 6]
    assert [m.step for m in client.get_metric_history(trained["run_id"], "beats_per_s")] == [2, 4, 6]
    val_curve = client.get_metric_history(trained["run_id"], "val_loss")
    assert sorted(m.step for m in val_curve) == [3, 6]  # during training at step 3, then the final score
    artifacts = {a.path for a in client.list_artifacts(trained["run_id"])}
    assert {"report.json", "dataset.json", "pretrain_config.json", "deepspeed.json", "docs"} <= artifacts
    assert (trained["root"] / "artifacts").is_dir()  # artifacts beside the SQLite file, not in the checkout


def test_dataset_digest_ignores_song_order():
    store = SyntheticStore(16, seed=1, min_bars=8, max_bars=16)
    shuffled = SyntheticStore(16, seed=1, min_bars=8, max_bars=16)
    shuffled.songs = shuffled.songs.iloc[::-1].reset_index(drop=True)
    assert dataset_identity(shuffled, "x")["content_digest"] == dataset_identity(store, "x")["content_digest"]
    other = SyntheticStore(15, seed=1, min_bars=8, max_bars=16)
    assert dataset_identity(other, "x")["content_digest"] != dataset_identity(store, "x")["content_digest"]


def test_the_first_version_is_champion_and_reloads_with_the_same_validation_loss(trained):
    first = trained["outcome"].registration
    assert (first["version"], first["alias"], first["champion_version"]) == ("1", "champion", None)
    loss_of = heldout_loss_fn(trained["cfg"], _names(trained))
    # the registered model, scored again on the run's validation beats, gives the run's own validation loss
    assert loss_of("models:/bat-encoder/1") == pytest.approx(trained["outcome"].report["model"]["loss"], rel=1e-5)


def _names(trained) -> list[str]:
    return torch.load(trained["out"] / "model.pt", weights_only=True)["feature_names"]


def test_champion_moves_only_to_a_lower_validation_loss(trained, registered):
    second, third, fourth = registered  # val_loss 1.0, 2.0, 0.5 against v1's real loss (far above 2)
    assert (second["alias"], second["champion_version"]) == ("champion", "1")
    assert second["basis"] == "champion's recorded val_loss"
    assert (third["alias"], third["champion_version"], third["champion_val_loss"]) == ("challenger", "2", 1.0)
    assert (fourth["alias"], fourth["champion_version"]) == ("champion", "2")
    client = MlflowClient(trained["uri"])
    assert str(client.get_model_version_by_alias("bat-encoder", "champion").version) == "4"
    v3 = client.get_model_version("bat-encoder", "3")
    assert v3.tags["val_loss"] == "2.0" and v3.tags["model"] == "tiny" and v3.tags["compared_with"].startswith("v")
    logged = client.download_artifacts(trained["run_id"], "registry_comparison.json", str(trained["root"]))
    assert json.loads(open(logged).read())["version"] == "4"  # the last comparison of this run


def test_champion_loads_with_pyfunc_and_predicts_masked_beats_and_embeddings(trained, registered, store_path):
    mlflow.set_tracking_uri(trained["uri"])
    model = mlflow.pyfunc.load_model("models:/bat-encoder@champion")
    store = open_store(store_path)
    arrays = store.song_arrays(0)
    L = 20
    order = [list(store.descriptor_names).index(n) for n in _descriptor_order()]
    bits = np.asarray(arrays.features[:L], bool)[None]  # (1, L, F)
    desc = np.asarray(arrays.descriptors[:L], np.int64)[None][..., order]  # (1, L, D) in the model's order
    valid = np.ones((1, L), bool)
    masked = np.zeros((1, L), bool)
    masked[0, [3, 11]] = True
    inputs = {"bits": bits, "desc": desc, "valid": valid, "masked": masked}
    prob = np.asarray(model.predict(inputs))
    assert prob.shape == (1, L, len(store.feature_names)) and ((prob > 0) & (prob < 1)).all()
    encoder = load_encoder(trained["out"] / "model.pt").eval()
    with torch.no_grad():
        expected = torch.sigmoid(encoder(*(torch.from_numpy(a) for a in (bits, desc, valid, masked)))).numpy()
    np.testing.assert_allclose(prob, expected, rtol=1e-5, atol=1e-6)
    emb = np.asarray(model.predict(inputs, params={"output": "embeddings"}))
    assert emb.shape == (1, L, encoder.cfg.d_model)


def _descriptor_order():
    from bat.model.pairwise import DESCRIPTOR_NAMES

    return DESCRIPTOR_NAMES


def test_the_registered_model_reads_a_midi_file_and_a_store_song_alike(trained, registered, store_path, midi_dir):
    mlflow.set_tracking_uri(trained["uri"])
    model = mlflow.pyfunc.load_model("models:/bat-encoder@champion").unwrap_python_model()
    store = open_store(store_path)
    song = int(np.flatnonzero(store.songs["source"].str.endswith("song03.mid"))[0])
    from_store = model.song_outputs(store=store_path, song=song)
    from_midi = model.song_outputs(midi=str(midi_dir / "song03.mid"))
    n = int(store.songs["n_beats"].loc[song])
    assert from_midi["embeddings"].shape == (n, 32) and from_midi["probabilities"].shape == (n, len(store.feature_names))
    np.testing.assert_allclose(from_midi["probabilities"], from_store["probabilities"], atol=1e-6)
    np.testing.assert_allclose(from_midi["embeddings"], from_store["embeddings"], atol=1e-6)
    assert ((from_midi["probabilities"] > 0) & (from_midi["probabilities"] < 1)).all()
    with pytest.raises(ValueError, match="give a MIDI"):
        model.song_outputs()


def test_models_cli_lists_and_shows_versions(trained, registered):
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--tracking-uri", trained["uri"]])
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.output.splitlines() if "│" in line]
    row = {line.split("│")[1].strip(): line for line in lines if line.split("│")[1].strip().isdigit()}
    assert set(row) == {"1", "2", "3", "4"}
    assert "champion" in row["4"] and "challenger" in row["3"] and "0.5" in row["4"]
    shown = runner.invoke(app, ["models", "show", "@champion", "--tracking-uri", trained["uri"]])
    assert shown.exit_code == 0, shown.output
    assert "bat-encoder version 4" in shown.output and "aliases: champion" in shown.output
    by_number = runner.invoke(app, ["models", "show", "3", "--tracking-uri", trained["uri"]])
    assert "aliases: challenger" in by_number.output and "tag val_loss: 2.0" in by_number.output
    missing = runner.invoke(app, ["models", "show", "@nobody", "--tracking-uri", trained["uri"]])
    assert missing.exit_code == 1


def test_pretrain_command_trains_with_zero1_logs_and_registers(tmp_path, monkeypatch, store_path):
    """``bat pretrain --zero-stage 1``: one process, gloo, fp32 on the CPU, then MLflow and the registry."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = tmp_path / "run"
    args = ["pretrain", "--store", store_path, "--steps", "3", "--batch-size", "2", "--max-len", "32"]
    args += ["--no-compare-plain", "--zero-stage", "1", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    ds = report["train"]["deepspeed"]
    assert ds["zero_optimization"]["stage"] == 1 and not ds["bf16"]["enabled"]
    assert ds["train_micro_batch_size_per_gpu"] == 2 and ds["gradient_clipping"] == 1.0
    assert report["train"]["history"][-1]["step"] == 3
    assert "bat-encoder version 1 is the champion" in " ".join(result.output.split())  # rich wraps lines
    client = MlflowClient(uri)
    v = client.get_model_version_by_alias("bat-encoder", "champion")
    assert "deepspeed.json" in {a.path for a in client.list_artifacts(v.run_id)}
    again = CliRunner().invoke(app, [*args[:-2], "--out", str(tmp_path / "again"), "--steps", "1"])
    assert again.exit_code == 0, again.output
    assert "version 2 is the challenger (champion scored on this run's validation beats)" in " ".join(again.output.split())
