"""The model registry: the trained encoder as an MLflow pyfunc model named ``bat-encoder``, with aliases.

    from bat.registry.models import register_encoder
    version = register_encoder("runs/tiny/model.pt", run_id, val_loss=report["model"]["loss"])

    import mlflow
    model = mlflow.pyfunc.load_model("models:/bat-encoder@champion")
    prob = model.predict({"bits": bits, "desc": desc, "valid": valid, "masked": masked})  # (B, L, F)

The model's artifacts are the state-dict checkpoint (``model.pt``) and its config (``config.json``); no torch
module is pickled, so a model loads with any bat whose encoder has the same parameters. A new version becomes
``champion`` only if its validation loss beats the current champion's; otherwise it is the ``challenger``.
The comparison is logged to the training run (``registry_comparison.json``) and tagged on the version.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np

MODEL_NAME = "bat-encoder"
PIP_REQUIREMENTS = ["torch", "numpy", "mlflow"]  # bat itself must be importable where the model loads


class EncoderModel(mlflow.pyfunc.PythonModel):
    """Per-beat probabilities of every feature bit, the masked beats predicted from their context."""

    def load_context(self, context):
        import torch

        from bat.model import BatConfig, BatEncoder

        config = json.loads(Path(context.artifacts["config"]).read_text())
        ckpt = torch.load(context.artifacts["checkpoint"], map_location="cpu", weights_only=True)
        self.model = BatEncoder(BatConfig(**config["model_config"]))
        self.model.load_state_dict(ckpt["model"])
        self.model.eval()
        self.feature_names = config["feature_names"]

    def predict(self, context, model_input, params=None):
        """``model_input``: bits (B, L, F) bool, desc (B, L, D) int64, valid and masked (B, L) bool."""
        import torch

        x = {k: torch.as_tensor(np.asarray(model_input[k])) for k in ("bits", "desc", "valid", "masked")}
        with torch.no_grad():
            logits = self.model(x["bits"].bool(), x["desc"].long(), x["valid"].bool(), x["masked"].bool())
        return torch.sigmoid(logits).float().numpy()  # (B, L, F)


def signature(n_features: int, n_descriptors: int):
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    inputs = Schema(
        [
            TensorSpec(np.dtype(bool), (-1, -1, n_features), "bits"),
            TensorSpec(np.dtype(np.int64), (-1, -1, n_descriptors), "desc"),
            TensorSpec(np.dtype(bool), (-1, -1), "valid"),
            TensorSpec(np.dtype(bool), (-1, -1), "masked"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, n_features))]))


def _champion(client, name: str):
    try:
        return client.get_model_version_by_alias(name, "champion")
    except mlflow.exceptions.MlflowException:
        return None


def register_encoder(
    checkpoint: str | Path,
    run_id: str,
    val_loss: float,
    name: str = MODEL_NAME,
    tags: dict[str, str] | None = None,
) -> dict:
    """Log ``checkpoint`` (from ``PretrainRecipe.save_checkpoint``) as a pyfunc model in run ``run_id``, register
    it as a new version of ``name`` and give it ``champion`` or ``challenger``; returns what was decided."""
    import torch

    from mlflow.tracking import MlflowClient

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config = {k: ckpt[k] for k in ("model_config", "pretrain_config", "feature_names", "descriptor_names")}
    config["pair_feature_names"] = ckpt["pair_feature_names"]
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id):
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config, indent=2))
        info = mlflow.pyfunc.log_model(
            name="encoder",
            python_model=EncoderModel(),
            artifacts={"checkpoint": str(checkpoint), "config": str(config_path)},
            signature=signature(len(config["feature_names"]), len(config["descriptor_names"])),
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=name,
        )
        version = str(info.registered_model_version)
        champion = _champion(client, name)
        has_loss = champion is not None and "val_loss" in champion.tags
        champion_loss = float(champion.tags["val_loss"]) if has_loss else None
        wins = champion_loss is None or val_loss < champion_loss
        alias = "champion" if wins else "challenger"
        comparison = {
            "version": version,
            "val_loss": val_loss,
            "champion_version": str(champion.version) if champion is not None else None,
            "champion_val_loss": champion_loss,
            "alias": alias,
        }
        mlflow.log_dict(comparison, "registry_comparison.json")
        mlflow.set_tag("registry.alias", alias)
    version_tags = {
        "val_loss": repr(float(val_loss)),
        "run_id": run_id,
        "model": str(config["pretrain_config"].get("model")),
        "pairwise": str(config["model_config"].get("pairwise")).lower(),
        "compared_with": f"v{comparison['champion_version']} val_loss={champion_loss}" if champion else "none",
        **(tags or {}),
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, alias, version)
    return comparison


def list_versions(name: str = MODEL_NAME) -> list[dict]:
    """Every version of ``name``, newest first, with its aliases and validation loss."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    rows = []
    for found in client.search_model_versions(f"name='{name}'"):
        v = client.get_model_version(name, found.version)  # search leaves aliases empty
        rows.append(
            {
                "version": str(v.version),
                "aliases": list(v.aliases),
                "val_loss": v.tags.get("val_loss"),
                "run_id": v.run_id,
                "tags": dict(v.tags),
                "source": v.source,
            }
        )
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)


def get_version(ref: str, name: str = MODEL_NAME):
    """A version by number ("3") or alias ("@champion")."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if ref.startswith("@"):
        return client.get_model_version_by_alias(name, ref[1:])
    return client.get_model_version(name, ref)
