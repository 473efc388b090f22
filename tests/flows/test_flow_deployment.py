"""The deployment path a user walks away from: a real Prefect server, ``bat serve``, ``prefect deployment run``.

Everything runs as separate processes, as on a user's machine; the test only talks HTTP to the server and
reads the store at the end. ``prefect.yaml`` is checked the same way: ``prefect deploy --all`` registers the
same deployment on a process work pool.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.flows.helpers import BIN, REPO, free_port, started, wait_for

pytestmark = pytest.mark.slow

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _prefect(server, *args: str, **env: str) -> str:
    result = subprocess.run([sys.executable, "-m", "prefect", *args], env=server.env(**env), cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_served_deployment_runs_when_triggered_by_name(prefect_server, small_corpus, tmp_path):
    from bat.store.reader import open_store

    store = tmp_path / "store.zarr"
    log = tmp_path / "serve.log"
    with started([str(BIN / "bat"), "serve"], prefect_server.env(PREFECT_RUNNER_POLL_FREQUENCY="1"), log) as serve:
        wait_for(lambda: serve.poll() is not None
                 or prefect_server.get("/deployments/name/featurize-corpus/default").status_code == 200,
                 120, "bat serve to register featurize-corpus/default")
        assert serve.poll() is None, log.read_text()[-3000:]

        out = _prefect(prefect_server, "deployment", "run", "featurize-corpus/default",
                       "-p", f"corpus={small_corpus.root}", "-p", f"store={store}",
                       "-p", "workers=2", "-p", "partition_size=8")
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)

        def final_state():
            state = prefect_server.get(f"/flow_runs/{run_id}").json()["state"]
            return state if state["type"] in FINAL else None

        state = wait_for(final_state, 300, f"flow run {run_id} to finish", interval=1.0)
        assert state["type"] == "COMPLETED", f"{state}\n{log.read_text()[-4000:]}"

    result = open_store(str(store))
    assert sorted(result.songs["content_hash"]) == sorted(small_corpus.good)
    assert sorted(result.failures["category"]) == sorted(small_corpus.bad.values())
    artifacts = prefect_server.post("/artifacts/filter", {
        "artifacts": {"key": {"any_": ["featurize-corpus-summary"]}, "flow_run_id": {"any_": [run_id]}}}).json()
    assert len(artifacts) == 1 and f"| featurized | {len(small_corpus.good)} |" in artifacts[0]["data"]


def test_prefect_yaml_registers_the_deployment_on_a_process_pool(prefect_server, tmp_path):
    from flows.deployments import deployments

    _prefect(prefect_server, "work-pool", "create", "bat-process", "--type", "process")
    _prefect(prefect_server, "--no-prompt", "deploy", "--all", BAT_PROJECT_DIR=str(REPO))
    required = {"featurize-corpus": ["corpus"], "train-encoder": []}
    for spec in deployments():
        flow_name = spec.load_flow().name
        deployment = prefect_server.get(f"/deployments/name/{flow_name}/{spec.name}").json()
        assert deployment["work_pool_name"] == "bat-process"
        assert deployment["parameter_openapi_schema"].get("required", []) == required[flow_name]
        assert deployment["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"] in (
            str(REPO), "{{ $BAT_PROJECT_DIR }}")


def test_bat_server_serves_the_api_with_project_local_state_and_stops_on_sigterm(tmp_path):
    import httpx

    port, home = free_port(), tmp_path / "prefect-home"
    env = {**os.environ, "PREFECT_HOME": str(home)}
    with started([str(BIN / "bat"), "server", "--port", str(port)], env, tmp_path / "server.log") as server:

        def healthy() -> bool:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 120, "bat server's /api/health")
        server.terminate()
        assert server.wait(timeout=30) == 0
    assert (home / "prefect.db").exists()
    assert f"export PREFECT_API_URL=http://127.0.0.1:{port}/api" in (tmp_path / "server.log").read_text()
