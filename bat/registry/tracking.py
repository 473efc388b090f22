"""Log a pretraining run to MLflow: what was trained on what, with which settings, and how well it did.

    run_id = open_training_run(cfg, out="runs/tiny")          # params, dataset identity, git commit
    log_interval(run_id, {"train_loss": 0.9, "beats_per_s": 5e4}, step=100)   # as training goes
    close_training_run(run_id, report, out="runs/tiny")       # held-out scores, DeepSpeed config, artifacts

A run records the full ``PretrainConfig`` and model config (params), the DeepSpeed config (``deepspeed.json``),
the dataset's identity (store path, schema version, a hash of the sorted song content hashes, numbers of songs
and beats), the git commit, the loss curve and held-out scores (metrics), and ``report.json`` and
``docs/features.md`` as artifacts. The tracking server is ``get_settings().tracking_uri`` unless given.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from bat.settings import get_settings, project_root

EXPERIMENT = "bat-pretrain"


def use_tracking(tracking_uri: str | None = None, experiment: str = EXPERIMENT, artifact_root: str | None = None):
    """Point mlflow at the tracking server and experiment; a new experiment keeps its artifacts under
    ``artifact_root``, by default an ``artifacts`` folder beside a SQLite database (``mlflow/artifacts`` for
    the settings' default ``mlflow/mlflow.db``) and the server's choice otherwise."""
    import mlflow

    uri = tracking_uri or get_settings().tracking_uri
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        if artifact_root is None and uri.startswith("sqlite:///"):
            artifact_root = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
        mlflow.create_experiment(experiment, artifact_location=artifact_root)
    return mlflow.set_experiment(experiment)


def dataset_identity(store, store_path: str) -> dict[str, Any]:
    """What the model was trained on: the same songs give the same ``content_digest`` in any order."""
    hashes = sorted(str(h) for h in store.songs["content_hash"])
    return {
        "store": store_path,
        "schema_version": str(getattr(store, "schema_version", "unknown")),
        "content_digest": hashlib.sha256("\n".join(hashes).encode()).hexdigest(),
        "n_songs": len(hashes),
        "n_beats": int(store.songs["n_beats"].sum()),
    }


def git_commit(root: Path | None = None) -> str:
    """The checkout's commit ("unknown" outside git), with "-dirty" when tracked files changed."""
    root = root or project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=root, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _flat(prefix: str, d: dict) -> dict[str, Any]:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flat(f"{prefix}{key}.", value))
        else:
            out[f"{prefix}{key}"] = value
    return out


RUN_FILE = "mlflow_run.json"  # in a training output folder: the MLflow run it logs to (a resumed run reuses it)


def open_training_run(
    cfg,
    out: str | Path,
    store=None,
    resume: bool = False,
    tracking_uri: str | None = None,
    artifact_root: str | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Start the MLflow run of a training in ``out`` and log what it trains on and how; returns its id.

    With ``resume``, the run recorded in ``out`` (same tracking server) is reopened, so a resumed training
    keeps one run with one loss curve. ``store``: the open store (default: open ``cfg.store``)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from bat.data.dataset import open_any_store

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    experiment = use_tracking(tracking_uri, artifact_root=artifact_root)
    uri = mlflow.get_tracking_uri()
    recorded = json.loads((out / RUN_FILE).read_text()) if (out / RUN_FILE).exists() else {}
    if resume and recorded.get("tracking_uri") == uri:
        MlflowClient().update_run(recorded["run_id"], status="RUNNING")
        return recorded["run_id"]
    cfg_dict = asdict(cfg) if is_dataclass(cfg) else dict(cfg)
    data = dataset_identity(open_any_store(store if store is not None else cfg_dict["store"]), cfg_dict["store"])
    client = MlflowClient()
    run = client.create_run(experiment.experiment_id, run_name=run_name)
    run_id = run.info.run_id
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params(_flat("", cfg_dict))
        mlflow.log_params({f"data.{k}": v for k, v in data.items()})
        mlflow.set_tags(
            {
                "git_commit": git_commit(),
                "dataset.store": data["store"],
                "dataset.schema_version": data["schema_version"],
                "dataset.content_digest": data["content_digest"],
                **(tags or {}),
            }
        )
        mlflow.log_dict(data, "dataset.json")
        mlflow.log_dict(cfg_dict, "pretrain_config.json")
    client.update_run(run_id, status="RUNNING")
    (out / RUN_FILE).write_text(json.dumps({"run_id": run_id, "tracking_uri": uri}))
    return run_id


def log_interval(run_id: str, metrics: dict[str, float], step: int) -> None:
    """Metrics of one logging interval (train loss, throughput, held-out scores) at optimizer step ``step``."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    now = int(time.time() * 1000)
    MlflowClient().log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])


def close_training_run(run_id: str, report: dict, out: str | Path) -> None:
    """Log the finished training's report: model config, DeepSpeed config, held-out scores, artifacts."""
    import mlflow
    from mlflow.tracking import MlflowClient

    out = Path(out)
    with mlflow.start_run(run_id=run_id):
        logged = MlflowClient().get_run(run_id).data.params
        model_params = _flat("model_config.", report.get("train", {}).get("model_config", {}))
        mlflow.log_params({k: v for k, v in model_params.items() if k not in logged})
        ds_config = report.get("train", {}).get("deepspeed")
        mlflow.set_tags({"deepspeed": "true", "world_size": str(report.get("train", {}).get("world_size", 1))})
        if ds_config is not None:
            mlflow.log_dict(ds_config, "deepspeed.json")
        final_step = int(report.get("train", {}).get("config", {}).get("steps", 0))
        for name, row in [("val", report["model"]), *report["baselines"].items()]:
            if row is None:
                continue
            prefix = "val" if name == "val" else f"baseline.{name}"
            scores = {f"{prefix}_{k}": v for k, v in row.items() if isinstance(v, (int, float))}
            mlflow.log_metrics(scores, step=final_step)  # after any interval evaluation: the run's latest value
        if (out / "report.json").exists():
            mlflow.log_artifact(str(out / "report.json"))
        features_doc = project_root() / "docs" / "features.md"
        if features_doc.exists():
            mlflow.log_artifact(str(features_doc), artifact_path="docs")
