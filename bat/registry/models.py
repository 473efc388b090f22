"""The model registry: the trained encoder as an MLflow pyfunc model named ``bat-encoder``, with aliases.

    from bat.registry.models import register_encoder
    version = register_encoder("runs/tiny/model.pt", run_id, val_loss=report["model"]["loss"])

    import mlflow
    model = mlflow.pyfunc.load_model("models:/bat-encoder@champion")
    prob = model.predict({"bits": bits, "desc": desc, "valid": valid, "masked": masked})  # (B, L, F)
    emb = model.predict({...}, params={"output": "embeddings"})                        # (B, L, d_model)
    song = model.unwrap_python_model().song_outputs(midi="song.mid")  # per-beat embeddings, probabilities

The model's artifacts are the state-dict checkpoint (``model.pt``) and its config (``config.json``); no torch
module is pickled, so a model loads with any bat whose encoder has the same parameters. A new version becomes
``champion`` only if its validation loss beats the current champion's, both scored on the new run's fixed
validation beats; otherwise it is the ``challenger``.
The comparison is logged to the training run (``registry_comparison.json``) and tagged on the version.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np

MODEL_NAME = "bat-encoder"
PIP_REQUIREMENTS = ["torch", "numpy", "mlflow"]  # bat itself must be importable where the model loads


class EncoderModel(mlflow.pyfunc.PythonModel):
    """The registered encoder: masked-feature probabilities or per-beat embeddings.

    ``predict`` takes tensors (bits, desc, valid, masked) and returns probabilities, or embeddings with
    ``params={"output": "embeddings"}``; ``song_outputs`` (via ``unwrap_python_model()``) takes a MIDI or audio
    file, or a song of a store, and returns both for every beat."""

    def load_context(self, context):
        import torch

        from bat.model import BatConfig, BatEncoder

        config = json.loads(Path(context.artifacts["config"]).read_text())
        ckpt = torch.load(context.artifacts["checkpoint"], map_location="cpu", weights_only=True)
        self.model = BatEncoder(BatConfig.from_saved(config["model_config"]))
        self.model.load_state_dict(ckpt["model"])
        self.model.eval()
        self.feature_names = config["feature_names"]

    def _run(self, bits, desc, valid, masked):
        """(probabilities, embeddings) as numpy: the final layer norm's output is the beat embedding."""
        import torch

        captured = {}
        hook = self.model.ln_f.register_forward_hook(lambda m, i, o: captured.setdefault("h", o))
        try:
            with torch.no_grad():
                logits = self.model(bits, desc, valid, masked)
        finally:
            hook.remove()
        return torch.sigmoid(logits).float().numpy(), captured["h"].float().numpy()

    def predict(self, context, model_input, params=None):
        """``model_input``: bits (B, L, F) bool, desc (B, L, D) int64, valid and masked (B, L) bool. Returns
        (B, L, F) probabilities, or (B, L, d_model) embeddings with ``params={"output": "embeddings"}``."""
        import torch

        output = (params or {}).get("output", "probabilities")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        x = {k: torch.as_tensor(np.asarray(model_input[k])) for k in ("bits", "desc", "valid", "masked")}
        prob, emb = self._run(x["bits"].bool(), x["desc"].long(), x["valid"].bool(), x["masked"].bool())
        return prob if output == "probabilities" else emb

    def song_outputs(
        self, midi: str | None = None, store: str | None = None, song: int | None = None, mask_every: int = 8
    ) -> dict:
        """Per-beat ``embeddings`` (n, d_model) of the whole song seen unmasked, and ``probabilities`` (n, F):
        each beat's features predicted with that beat masked (every ``mask_every``-th beat at once, in
        ``mask_every`` passes). From a MIDI/audio file (``midi``) or song ``song`` of the store at ``store``."""
        import torch

        from bat.data.dataset import StoreHandle, song_windows
        from bat.model.pairwise import DESCRIPTOR_NAMES

        if midi is not None:
            from bat.featurize import featurize_path

            done = featurize_path(midi)
            names = list(done.descriptor_names)
            bits = done.features.astype(bool)
            desc = done.descriptors.astype(np.int64)[:, [names.index(n) for n in DESCRIPTOR_NAMES]]
            feature_names = list(done.feature_names)
        elif store is not None and song is not None:
            handle = StoreHandle(store)
            bits, desc = handle.read(song, 0, int(handle.store.songs["n_beats"].loc[song]))
            feature_names = list(handle.store.feature_names)
        else:
            raise ValueError("give a MIDI/audio file (midi=...) or a store and a song number (store=..., song=...)")
        if feature_names != self.feature_names:
            raise ValueError("this song's features differ from the model's: featurize it with the bat that trained it")
        n = len(bits)
        prob = np.zeros((n, len(self.feature_names)), np.float32)
        emb = np.zeros((n, self.model.cfg.d_model), np.float32)
        for w in song_windows(0, n, self.model.cfg.max_len):
            b = torch.from_numpy(bits[None, w.start : w.stop])
            d = torch.from_numpy(desc[None, w.start : w.stop])
            valid = torch.ones(1, w.stop - w.start, dtype=torch.bool)
            lo, hi = w.keep_start - w.start, w.keep_stop - w.start
            emb[w.keep_start : w.keep_stop] = self._run(b, d, valid, torch.zeros_like(valid))[1][0, lo:hi]
            for phase in range(mask_every):
                masked = (torch.arange(w.stop - w.start) % mask_every == phase)[None]
                p = self._run(b, d, valid, masked)[0][0]
                rows = np.flatnonzero(masked[0].numpy())
                rows = rows[(rows >= lo) & (rows < hi)]
                prob[w.start + rows] = p[rows]
        return {"embeddings": emb, "probabilities": prob, "feature_names": self.feature_names}


OUTPUTS = ("probabilities", "embeddings")


def signature(n_features: int, n_descriptors: int):
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    inputs = Schema(
        [
            TensorSpec(np.dtype(bool), (-1, -1, n_features), "bits"),
            TensorSpec(np.dtype(np.int64), (-1, -1, n_descriptors), "desc"),
            TensorSpec(np.dtype(bool), (-1, -1), "valid"),
            TensorSpec(np.dtype(bool), (-1, -1), "masked"),
        ]
    )
    outputs = Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1))])  # (B, L, F) or (B, L, d_model)
    params = ParamSchema([ParamSpec("output", "string", "probabilities")])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


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
    champion_loss_fn: Callable[[str], float | None] | None = None,
) -> dict:
    """Log ``checkpoint`` (from ``PretrainRecipe.save_checkpoint``) as a pyfunc model in run ``run_id``, register
    it as a new version of ``name`` and give it ``champion`` or ``challenger``; returns what was decided.

    ``champion_loss_fn(model_uri)`` scores the current champion on the same validation beats as ``val_loss``
    (None: not comparable, e.g. other features); without it the champion's recorded ``val_loss`` tag is used."""
    import torch

    from mlflow.tracking import MlflowClient

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config = {k: ckpt[k] for k in ("model_config", "pretrain_config", "feature_names", "descriptor_names")}
    config["pair_feature_names"] = ckpt["pair_feature_names"]
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id):
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config, indent=2))
        with warnings.catch_warnings():  # MLflow nags about type hints and input examples; the signature is explicit
            warnings.filterwarnings("ignore", message=".*(type hints|input example|CloudPickle).*")
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
        champion_loss, basis = None, "no champion"
        if champion is not None and champion_loss_fn is not None:
            champion_loss = champion_loss_fn(f"models:/{name}/{champion.version}")
            basis = "champion scored on this run's validation beats" if champion_loss is not None else (
                "champion not comparable (other features or descriptors)")
        elif champion is not None and "val_loss" in champion.tags:
            champion_loss, basis = float(champion.tags["val_loss"]), "champion's recorded val_loss"
        wins = champion_loss is None or val_loss < champion_loss
        alias = "champion" if wins else "challenger"
        comparison = {
            "version": version,
            "val_loss": val_loss,
            "champion_version": str(champion.version) if champion is not None else None,
            "champion_val_loss": champion_loss,
            "basis": basis,
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
