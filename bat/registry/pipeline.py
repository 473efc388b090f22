"""Train, track, register: what ``bat pretrain``, ``bat demo`` and the train-encoder flow run.

One call trains the encoder (and the plain twin) through DeepSpeed, logs the run to MLflow as it goes (train
loss, learning rate, beats/s per interval; held-out loss, AUROC and F1 every ``eval_every`` steps and at the
end), registers the model as ``bat-encoder`` and promotes it to ``champion`` only if it beats the current
champion on this run's validation beats. Under a multi-rank launcher every rank trains; rank 0 alone talks to
MLflow and gets the outcome.

    outcome = train_and_register(PretrainConfig(store="data/store.zarr", steps=600), out="runs/tiny")
    outcome.registration["version"], outcome.registration["alias"]
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from bat.train.recipe import PretrainConfig, run_pretrain

OUTCOME_FILE = "outcome.json"  # in the output folder, for launchers that ran training in another process


@dataclass
class TrainingOutcome:
    report: dict  # run_pretrain's report (report.json)
    run_id: str  # the MLflow run
    registration: dict | None  # register_encoder's decision: version, alias, the comparison; None if not registered

    def summary(self) -> dict:
        """What ``outcome.json`` keeps: the run, the registry's decision and the held-out scores."""
        scores = {"model": self.report["model"], "baselines": self.report["baselines"]}
        return {"run_id": self.run_id, "registration": self.registration, "scores": scores}


def heldout_loss_fn(cfg: PretrainConfig, feature_names: list[str], store=None):
    """``champion_loss_fn`` for ``register_encoder``: a registered model's loss on exactly the validation beats
    (songs, windows, masks) this run was scored on; None when its features differ from the store's."""

    def loss_of(model_uri: str) -> float | None:
        import mlflow

        from bat.data.dataset import EvalWindows, StoreHandle
        from bat.data.split import split_songs
        from bat.train.evaluate import predict_masked
        from bat.train.metrics import score

        loaded = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
        if list(loaded.feature_names) != list(feature_names):
            return None
        handle = StoreHandle(store if store is not None else cfg.store)
        _, val_songs = split_songs(handle.store.songs)
        if cfg.max_eval_songs:
            val_songs = val_songs[: cfg.max_eval_songs]
        max_len = min(cfg.max_len, loaded.model.cfg.max_len)
        preds = predict_masked(
            loaded.model, EvalWindows(handle, val_songs, max_len), batch_size=cfg.eval_batch_size,
            mask_rate=cfg.mask_rate, span=cfg.mask_span, seed=cfg.seed,
        )
        return float(score(preds.prob, preds.truth, [""] * len(feature_names))["loss"])

    return loss_of


def train_and_register(
    cfg: PretrainConfig,
    out: str | Path,
    compare_plain: bool = True,
    resume: bool = False,
    register: bool = True,
    store=None,
    tags: dict[str, str] | None = None,
    on_log=None,
) -> TrainingOutcome | None:
    """Train ``cfg`` into ``out`` with MLflow tracking (MLFLOW_TRACKING_URI, default the SQLite store under
    mlflow/) and, with ``register``, registration; returns the outcome on rank 0, None on other ranks.
    ``on_log(model_name, entry)`` also sees every interval (for printing)."""
    from bat.registry.tracking import close_training_run, log_interval, open_training_run

    out = Path(out)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    run_id = open_training_run(cfg, out, store=store, resume=resume, tags=tags) if rank0 else None

    def log(name: str, entry: dict) -> None:
        if rank0:
            prefix = "" if name == "model" else f"{name}."
            metrics = {f"{prefix}train_loss": entry["loss"], f"{prefix}lr": entry["lr"],
                       f"{prefix}beats_per_s": entry["beats_per_s"]}
            log_interval(run_id, metrics, entry["step"])
        if on_log:
            on_log(name, entry)

    def log_eval(name: str, entry: dict) -> None:
        if rank0:
            prefix = "" if name == "model" else f"{name}."
            scores = {f"{prefix}val_{k}": entry[k] for k in ("loss", "auroc_macro", "f1_macro")}
            log_interval(run_id, scores, entry["step"])

    try:
        report = run_pretrain(cfg, out, compare_plain=compare_plain, store=store, on_log=log, on_eval=log_eval,
                              resume=resume)
    except BaseException:
        if rank0:
            from mlflow.tracking import MlflowClient

            MlflowClient().set_terminated(run_id, status="FAILED")
        raise
    if not rank0:
        return None
    close_training_run(run_id, report, out)
    registration = None
    if register:
        from bat.registry.models import register_encoder

        steps = report["train"]["config"]["steps"]
        registration = register_encoder(
            out / "model.pt", run_id, val_loss=report["model"]["loss"],
            tags={"steps": str(steps), **(tags or {})},
            champion_loss_fn=heldout_loss_fn(cfg, _feature_names(out), store),
        )
        from mlflow.tracking import MlflowClient

        MlflowClient().set_tag(run_id, "registry.version", registration["version"])
    outcome = TrainingOutcome(report=report, run_id=run_id, registration=registration)
    (out / OUTCOME_FILE).write_text(json.dumps(outcome.summary(), indent=2))
    return outcome


def _feature_names(out: Path) -> list[str]:
    import torch

    return torch.load(out / "model.pt", map_location="cpu", weights_only=True)["feature_names"]
