"""The deployment files agree with the code: prefect.yaml, flows/deployments.py, infra/docker-compose.yml.

Docker is not available in CI, so the compose file is checked for what breaks silently: a service that
depends on one that does not exist, a ${VARIABLE} with no value in .env.example, a bat service missing a
setting bat needs to reach the others.
"""

from __future__ import annotations

import re

import yaml

from tests.flows.helpers import REPO

BAT_SETTINGS = {"PREFECT_API_URL", "BAT_STORE_PATH", "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DASK_SCHEDULER_ADDRESS"}


def test_compose_stack_is_coherent():
    text = (REPO / "infra" / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert {"prefect-server", "prefect-db", "prefect-worker", "dask-scheduler", "dask-worker", "mlflow",
            "mlflow-db", "minio"} <= set(services)
    for name, service in services.items():
        assert "image" in service, name
        for needed in service.get("depends_on", []):
            assert needed in services, f"{name} depends on a missing service {needed}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(("$", ".", "/")) or source in compose["volumes"], (name, volume)
        if service["image"] == "bat:latest":
            assert BAT_SETTINGS <= set(service["environment"]), name
    assert "prefect-db:5432" in services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert "s3://" in services["mlflow"]["command"] and "mlflow-db:5432" in services["mlflow"]["command"]

    example = (REPO / "infra" / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.M))
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", text))  # ${VAR} with no :-default
    assert required <= defined, f"set these in infra/.env.example: {sorted(required - defined)}"
    for line in example.splitlines():
        if re.match(r"^[A-Z_]*(PASSWORD|SECRET)[A-Z_]*=", line):
            assert "change-me" in line, f"no real secrets in the repository: {line}"


def test_prefect_yaml_lists_the_served_deployments():
    from flows.deployments import deployments

    project = yaml.safe_load((REPO / "prefect.yaml").read_text())
    listed = {(d["entrypoint"], d["name"]) for d in project["deployments"]}
    served = {(spec.flow.replace(".", "/").replace(":", ".py:", 1), spec.name) for spec in deployments()}
    assert listed == served
    crons = {d["name"]: [s["cron"] for s in d.get("schedules") or []] for d in project["deployments"]}
    assert crons == {spec.name: [spec.cron] if spec.cron else [] for spec in deployments()}
    for entrypoint, _ in listed:
        assert (REPO / entrypoint.split(":")[0]).is_file()
