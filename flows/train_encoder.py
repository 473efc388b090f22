"""train-encoder: featurize what is new in the corpus, train the encoder, evaluate, register, promote.

First the corpus (when given) goes through featurize-corpus as a subflow, so only files the store lacks are
featurized. Then we fingerprint what a model would be trained on: the store's songs (a digest of their
content hashes), bat's code (a digest of its sources) and the training settings. If a finished MLflow run
already carries that fingerprint, nothing changed since: the run says so and stops, unless ``force``.
Otherwise we train, in this process or through the ``deepspeed`` launcher (GPUs, several ranks, a hostfile
for several nodes); training logs to MLflow and registers ``bat-encoder``, which becomes ``champion`` only if
it beats the current champion on this run's validation beats. A markdown artifact tells what happened.

    bat serve      # serves train-encoder/scheduled-retrain (weekly, BAT_RETRAIN_CRON) beside featurize-corpus
    prefect deployment run train-encoder/scheduled-retrain -p steps=2000 -p force=true
"""

from __future__ import annotations

from bat.settings import configure_prefect_env

configure_prefect_env()  # before prefect is imported: project-local PREFECT_HOME

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from bat.settings import get_settings, project_root  # noqa: E402
from bat.train.recipe import PretrainConfig  # noqa: E402

LAUNCHERS = ("in-process", "deepspeed")
FINGERPRINT_TAG = "bat.fingerprint"


def code_digest() -> str:
    """A digest of bat's Python sources: any change to the featurizer, the model or the recipe retrains."""
    root = Path(__file__).resolve().parents[1] / "bat"
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@task(cache_policy=NO_CACHE)
def fingerprint(cfg: PretrainConfig) -> dict:
    """What a model trained now would depend on; equal fingerprints mean a retrain would learn nothing new."""
    from bat.registry.tracking import dataset_identity
    from bat.store import open_store

    data = dataset_identity(open_store(cfg.store), cfg.store)
    training = {k: v for k, v in asdict(cfg).items() if k not in ("store", "num_workers", "device", "log_every")}
    parts = {"data": data["content_digest"], "code": code_digest(), "training": training}
    parts["fingerprint"] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]
    parts["n_songs"], parts["n_beats"] = data["n_songs"], data["n_beats"]
    return parts


@task(cache_policy=NO_CACHE)
def previous_training(fp: str) -> dict | None:
    """The newest finished training run with fingerprint ``fp``, if any."""
    import mlflow

    from bat.registry.tracking import use_tracking

    experiment = use_tracking()
    runs = mlflow.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{FINGERPRINT_TAG}` = '{fp}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1, output_format="list",
    )
    if not runs:
        return None
    run = runs[0]
    return {"run_id": run.info.run_id, "version": run.data.tags.get("registry.version"),
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(run.info.start_time / 1000))}


def deepspeed_command(cfg: PretrainConfig, out: Path, num_gpus: int, hostfile: str | None, tags: dict) -> list[str]:
    """``deepspeed [--hostfile F] --num_gpus N --module bat.cli pretrain ...``: every rank runs bat pretrain."""
    launcher = [str(Path(sys.executable).parent / "deepspeed"), "--no_local_rank"]
    if hostfile:
        launcher += ["--hostfile", hostfile]
    if num_gpus:
        launcher += ["--num_gpus", str(num_gpus)]
    args = ["--module", "bat.cli", "pretrain", "--store", cfg.store, "--config", cfg.model, "--steps", str(cfg.steps)]
    args += ["--batch-size", str(cfg.batch_size), "--grad-accum", str(cfg.grad_accum), "--lr", str(cfg.lr)]
    args += ["--max-len", str(cfg.max_len), "--zero-stage", str(cfg.zero_stage), "--seed", str(cfg.seed)]
    args += ["--checkpoint-every", str(cfg.checkpoint_every), "--eval-every", str(cfg.eval_every), "--out", str(out)]
    if cfg.ds_config:
        args += ["--ds-config", cfg.ds_config]
    for key, value in tags.items():
        args += ["--tag", f"{key}={value}"]
    return launcher + args


@task(cache_policy=NO_CACHE)
def train(
    cfg: PretrainConfig, out: Path, compare_plain: bool, launcher: str, num_gpus: int, hostfile: str | None, tags: dict
) -> dict:
    """Train, track and register; returns the report's scores and the registry's decision."""
    logger = get_run_logger()
    if launcher == "in-process":
        from bat.registry.pipeline import train_and_register

        def log(name: str, entry: dict) -> None:
            logger.info("%s step %d: loss %.4f, %.0f beats/s", name, entry["step"], entry["loss"], entry["beats_per_s"])

        train_and_register(cfg, out, compare_plain=compare_plain, tags=tags, on_log=log)
    else:
        command = deepspeed_command(cfg, out, num_gpus, hostfile, tags)
        if not compare_plain:
            command.append("--no-compare-plain")
        logger.info("launching: %s", " ".join(command))
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        done = subprocess.run(command, cwd=project_root(), env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the deepspeed launcher failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads((out / "outcome.json").read_text())


@flow(name="train-encoder")
def train_encoder(
    corpus: str | None = None,
    store: str | None = None,
    config: str = "tiny",
    steps: int = 300,
    batch_size: int = 16,
    max_len: int = 512,
    lr: float | None = None,
    zero_stage: int = 0,
    eval_every: int = 0,
    compare_plain: bool = True,
    launcher: str = "in-process",
    num_gpus: int = 0,
    hostfile: str | None = None,
    out: str | None = None,
    force: bool = False,
    workers: int | None = None,
) -> dict:
    """Retrain the encoder when its data or code changed, register it, promote it if it is better.

    Args:
        corpus: Featurize this corpus into the store first (only files the store lacks); None: use the store.
        store: The featurized store (default: BAT_STORE_PATH or data/store.zarr).
        config: Model size: tiny, small or base.
        steps, batch_size, max_len, lr, zero_stage, eval_every: Training settings, as for ``bat pretrain``.
        compare_plain: Also train the plain encoder (no pair features) as a baseline in the report.
        launcher: "in-process" (this process, one rank) or "deepspeed" (the launcher: GPUs, ranks, nodes).
        num_gpus: With the deepspeed launcher: processes per node (default: every GPU it finds).
        hostfile: With the deepspeed launcher: a hostfile for several nodes (see infra/hostfile.example).
        out: Folder for checkpoints and report.json (default: runs/train-encoder/<time>).
        force: Train even if nothing changed since the last finished training.
        workers: Worker processes for featurizing the corpus.
    """
    logger = get_run_logger()
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")
    settings = get_settings()
    store = store or settings.store
    featurized = None
    if corpus:
        from flows.featurize_corpus import featurize_corpus

        featurized = featurize_corpus(corpus=corpus, store=store, workers=workers)
        logger.info("corpus: %s new songs featurized, %s already in the store", featurized["featurized"],
                    featurized["skipped"])
    cfg = PretrainConfig(store=store, model=config, steps=steps, batch_size=batch_size, max_len=max_len, lr=lr,
                         zero_stage=zero_stage, eval_every=eval_every, log_every=max(1, min(100, steps // 10)))
    fp = fingerprint(cfg)
    before = previous_training(fp["fingerprint"])
    if before and not force:
        message = (f"nothing to do: no new data and no code change since training run {before['run_id']} "
                   f"({before['started']}, bat-encoder version {before['version']}); pass force=true to retrain")
        logger.info(message)
        create_markdown_artifact(f"# train-encoder: skipped\n\n{message}\n", key="train-encoder-summary")
        return {"skipped": True, "reason": message, "previous": before, "fingerprint": fp["fingerprint"]}
    run_dir = Path(out) if out else settings.data_dir.parent / "runs" / "train-encoder" / time.strftime("%Y%m%d-%H%M%S")
    tags = {FINGERPRINT_TAG: fp["fingerprint"], "trigger": "train-encoder"}
    outcome = train(cfg, run_dir, compare_plain, launcher, num_gpus, hostfile, tags)
    result = {"skipped": False, "fingerprint": fp["fingerprint"], "out": str(run_dir), "featurized": featurized,
              "n_songs": fp["n_songs"], "n_beats": fp["n_beats"], **outcome}
    create_markdown_artifact(_markdown(result), key="train-encoder-summary", description="train-encoder outcome")
    return result


def _markdown(result: dict) -> str:
    reg, model = result["registration"], result["scores"]["model"]
    lines = ["# train-encoder", "", f"- songs: {result['n_songs']:,}, beats: {result['n_beats']:,}",
             f"- MLflow run: `{result['run_id']}`"]
    if reg:
        lines.append(f"- **bat-encoder version {reg['version']}: {reg['alias']}** ({reg['basis']})")
    lines += ["", "| predictor | loss | macro AUROC | macro F1 |", "|---|---|---|---|"]
    for name, row in [("model", model), *result["scores"]["baselines"].items()]:
        if row:
            lines.append(f"| {name} | {row['loss']:.3f} | {row['auroc_macro']:.3f} | {row['f1_macro']:.3f} |")
    return "\n".join(lines) + "\n"
