"""Log a pretraining run to MLflow: what was trained on what, with which settings, and how well it did.

    from bat.registry.tracking import log_training_run
    run_id = log_training_run(report, cfg, out="runs/tiny", ds_config=None)

A run records the full ``PretrainConfig`` and model config (params), the DeepSpeed config (``deepspeed.json``),
the dataset's identity (store path, schema version, a hash of the sorted song content hashes, numbers of songs
and beats), the git commit, the loss curve and held-out scores (metrics), and ``report.json`` and
``docs/features.md`` as artifacts. The tracking server is ``get_settings().tracking_uri`` unless given.
"""

from __future__ import annotations

import hashlib
import subprocess
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


def log_training_run(
    report: dict,
    cfg,
    out: str | Path,
    store=None,
    ds_config: dict | None = None,
    tracking_uri: str | None = None,
    artifact_root: str | None = None,
    run_name: str | None = None,
) -> str:
    """Log one finished ``run_pretrain`` (its report and ``out`` folder) as an MLflow run; returns the run id.

    ``store``: the open store it trained on (default: open ``cfg.store``)."""
    import mlflow

    from bat.data.dataset import open_any_store

    out = Path(out)
    cfg_dict = asdict(cfg) if is_dataclass(cfg) else dict(cfg)
    data = dataset_identity(open_any_store(store if store is not None else cfg_dict["store"]), cfg_dict["store"])
    use_tracking(tracking_uri, artifact_root=artifact_root)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params(_flat("", cfg_dict))
        mlflow.log_params(_flat("model_config.", report.get("train", {}).get("model_config", {})))
        mlflow.log_params({f"data.{k}": v for k, v in data.items()})
        mlflow.set_tags(
            {
                "git_commit": git_commit(),
                "dataset.store": data["store"],
                "dataset.schema_version": data["schema_version"],
                "dataset.content_digest": data["content_digest"],
                "deepspeed": str(ds_config is not None).lower(),
            }
        )
        mlflow.log_dict(data, "dataset.json")
        mlflow.log_dict(cfg_dict, "pretrain_config.json")
        if ds_config is not None:
            mlflow.log_dict(ds_config, "deepspeed.json")
        for entry in report.get("train", {}).get("history", []):
            mlflow.log_metrics({"train_loss": entry["loss"], "lr": entry["lr"]}, step=entry["step"])
        for name, row in [("val", report["model"]), *report["baselines"].items()]:
            if row is None:
                continue
            prefix = "val" if name == "val" else f"baseline.{name}"
            mlflow.log_metrics({f"{prefix}_{k}": v for k, v in row.items() if isinstance(v, (int, float))})
        if (out / "report.json").exists():
            mlflow.log_artifact(str(out / "report.json"))
        features_doc = project_root() / "docs" / "features.md"
        if features_doc.exists():
            mlflow.log_artifact(str(features_doc), artifact_path="docs")
        return run.info.run_id
