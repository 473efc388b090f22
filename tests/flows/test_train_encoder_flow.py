"""The train-encoder flow against a real Prefect server: featurize what is new, train, register; skip when
neither data nor code changed; retrain when a song arrives; and the served ``train-encoder/scheduled-retrain``
deployment with its weekly schedule, run by name."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from tests.flows.helpers import BIN, REPO, started, wait_for

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
SMALL = {"steps": 2, "batch_size": 2, "max_len": 32, "workers": 1}


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return MlflowClient(uri)


def test_retrains_only_on_new_data_or_when_forced(prefect_api, tracking, midi_dir, tmp_path):
    from flows.train_encoder import train_encoder
    from bat.store import open_store

    corpus, store = tmp_path / "corpus", str(tmp_path / "store.zarr")
    corpus.mkdir()
    for f in sorted(midi_dir.glob("*.mid"))[:12]:
        shutil.copy(f, corpus)
    first = train_encoder(corpus=str(corpus), store=store, out=str(tmp_path / "r1"), **SMALL)
    assert not first["skipped"] and first["featurized"]["featurized"] == 12
    assert first["registration"]["version"] == "1" and first["registration"]["alias"] == "champion"
    assert (tmp_path / "r1" / "model.pt").exists()

    again = train_encoder(corpus=str(corpus), store=store, out=str(tmp_path / "r2"), **SMALL)
    assert again["skipped"] and "no new data and no code change" in again["reason"], (first, again)
    assert again["previous"]["run_id"] == first["run_id"] and again["previous"]["version"] == "1"
    assert not (tmp_path / "r2").exists()

    shutil.copy(sorted(midi_dir.glob("*.mid"))[12], corpus)  # a new song arrives
    third = train_encoder(corpus=str(corpus), store=store, out=str(tmp_path / "r3"), **SMALL)
    assert not third["skipped"] and third["featurized"]["featurized"] == 1 and third["n_songs"] == 13
    assert len(open_store(store).songs) == 13

    forced = train_encoder(store=store, out=str(tmp_path / "r4"), force=True, **SMALL)
    assert not forced["skipped"] and forced["fingerprint"] == third["fingerprint"]
    versions = {str(v.version) for v in tracking.search_model_versions("name='bat-encoder'")}
    assert versions == {"1", "2", "3"}
    run = tracking.get_run(forced["run_id"])
    assert run.data.tags["bat.fingerprint"] == forced["fingerprint"] and run.data.tags["registry.version"] == "3"


def test_the_launcher_path_trains_through_deepspeed(prefect_api, tracking, store_path, tmp_path):
    from flows.train_encoder import train_encoder

    result = train_encoder(store=store_path, out=str(tmp_path / "run"), launcher="deepspeed", num_gpus=1, **SMALL)
    assert not result["skipped"] and result["registration"]["alias"] == "champion"
    run = tracking.get_run(result["run_id"])
    assert run.data.tags["trigger"] == "train-encoder" and run.data.tags["bat.fingerprint"] == result["fingerprint"]


@pytest.mark.slow
def test_served_scheduled_retrain_has_its_schedule_and_runs_by_name(prefect_server, store_path, tmp_path):
    env = prefect_server.env(PREFECT_RUNNER_POLL_FREQUENCY="1", MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'm.db'}",
                             BAT_RETRAIN_CRON="30 4 * * 0")
    log = tmp_path / "serve.log"
    name = "train-encoder/scheduled-retrain"
    existing = prefect_server.get(f"/deployments/name/{name}")
    if existing.status_code == 200:  # registered by an earlier test (prefect deploy --all) on this server
        import httpx

        httpx.delete(f"{prefect_server.url}/deployments/{existing.json()['id']}", timeout=10).raise_for_status()
    with started([str(BIN / "bat"), "serve", "--only", name], env, log) as serve:
        wait_for(lambda: serve.poll() is not None or prefect_server.get(f"/deployments/name/{name}").status_code == 200,
                 120, f"bat serve to register {name}")
        assert serve.poll() is None, log.read_text()[-3000:]
        deployment = prefect_server.get(f"/deployments/name/{name}").json()
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["30 4 * * 0"]
        run = subprocess.run(
            [sys.executable, "-m", "prefect", "deployment", "run", name, "-p", f"store={store_path}", "-p", "corpus=",
             "-p", "steps=2", "-p", "batch_size=2", "-p", "max_len=32", "-p", f"out={tmp_path / 'run'}"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=180,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout).group(1)

        def final_state():
            state = prefect_server.get(f"/flow_runs/{run_id}").json()["state"]
            return state if state["type"] in FINAL else None

        state = wait_for(final_state, 400, f"flow run {run_id} to finish", interval=1.0)
        assert state["type"] == "COMPLETED", f"{state}\n{log.read_text()[-4000:]}"
    assert (tmp_path / "run" / "model.pt").exists()
    versions = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}").search_model_versions("name='bat-encoder'")
    assert len(versions) == 1
