"""``bat pretrain``: masked-beat pretraining of the Beat-As-Token encoder on a featurized store.

    bat pretrain --store data/store.zarr --config tiny --steps 2000 --out runs/tiny
    bat pretrain --store data/store.zarr --out runs/tiny --resume          # continue a killed run
    bat pretrain --store synthetic:64 --steps 200 --max-len 128 --out runs/smoke --no-register   # no data
    deepspeed --num_gpus 2 --no_local_rank --module bat.cli pretrain --store data/store.zarr --zero-stage 2

Training goes through DeepSpeed (one process here, every rank under the ``deepspeed`` launcher), is logged to
MLflow (MLFLOW_TRACKING_URI; default the SQLite store under mlflow/) and the model is registered as
``bat-encoder``. ``--out`` gets ``model.pt`` (and ``plain.pt``, the plain encoder trained the same way as a
baseline), resumable DeepSpeed checkpoints and ``report.json``; the held-out scores are printed next to the
baselines.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer


def pretrain(
    store: str = typer.Option("", "--store", help="Featurized store (default: the settings' store), or synthetic:N."),
    config: str = typer.Option("tiny", "--config", help="Model size: tiny, small or base."),
    pairwise: bool = typer.Option(True, "--pairwise/--no-pairwise", help="Pairwise beat features in the first layer."),
    compare_plain: bool = typer.Option(
        True, "--compare-plain/--no-compare-plain", help="Also train the plain encoder as a baseline."
    ),
    steps: int = typer.Option(300, "--steps", help="Optimizer steps per model."),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per micro-batch, per rank."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per optimizer step."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default: the config's, 3e-3 for tiny)."),
    max_len: int = typer.Option(512, "--max-len", help="Beats per window."),
    mask_rate: float = typer.Option(0.15, "--mask-rate", help="Fraction of beats (or bars) to hide."),
    mask_bars: bool = typer.Option(False, "--mask-bars", help="Hide whole bars instead of single beats."),
    num_workers: int = typer.Option(0, "--num-workers", help="DataLoader worker processes."),
    eval_songs: int = typer.Option(0, "--eval-songs", help="Score at most this many validation songs (0: all)."),
    eval_every: int = typer.Option(0, "--eval-every", help="Steps between held-out evaluations (0: at the end)."),
    checkpoint_every: int = typer.Option(100, "--checkpoint-every", help="Steps between resumable checkpoints."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --out."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1..."),
    out: Path = typer.Option(Path("runs/pretrain"), "--out", help="Folder for checkpoints and report.json."),
    seed: int = typer.Option(0, "--seed", help="Seed for init, crops and masks."),
    zero_stage: int = typer.Option(0, "--zero-stage", help="DeepSpeed ZeRO stage: 0, 1 or 2."),
    ds_config: Path = typer.Option(None, "--ds-config", help="JSON merged over the generated DeepSpeed config."),
    register: bool = typer.Option(
        True, "--register/--no-register", help="Register the trained model as bat-encoder in the MLflow registry."
    ),
    tag: list[str] = typer.Option(None, "--tag", help="KEY=VALUE tag of the MLflow run and model version; repeatable."),
) -> None:
    """Pretrain the encoder by masked-beat prediction; report held-out AUROC/F1 against the baselines."""
    import json

    from rich.console import Console

    from bat.model import CONFIGS
    from bat.registry.pipeline import train_and_register
    from bat.train import PretrainConfig
    from bat.train.evaluate import report_tables

    console = Console()
    if config not in CONFIGS:
        choices = ", ".join(CONFIGS)
        raise typer.BadParameter(f"unknown config {config!r}; choose one of {choices}", param_hint="--config")
    if zero_stage not in (0, 1, 2):
        raise typer.BadParameter("ZeRO stage must be 0, 1 or 2", param_hint="--zero-stage")
    if ds_config is not None and not ds_config.is_file():
        raise typer.BadParameter(f"{ds_config} is not a file", param_hint="--ds-config")
    bad_tags = [t for t in tag or [] if "=" not in t]
    if bad_tags:
        raise typer.BadParameter(f"tags must be KEY=VALUE, got {bad_tags}", param_hint="--tag")
    tags = dict(t.split("=", 1) for t in tag or [])
    if not store:
        from bat.settings import get_settings

        store = get_settings().store
    cfg = PretrainConfig(
        store=store,
        model=config,
        pairwise=pairwise,
        steps=steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        lr=lr,
        max_len=max_len,
        mask_rate=mask_rate,
        mask_span="bar" if mask_bars else "beat",
        num_workers=num_workers,
        max_eval_songs=eval_songs,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        device=device,
        seed=seed,
        zero_stage=zero_stage,
        ds_config=str(ds_config) if ds_config else "",
        log_every=max(1, min(100, steps // 10)),
    )
    rank0 = int(os.environ.get("RANK", "0")) == 0

    def log(name: str, entry: dict) -> None:
        if rank0:
            console.print(
                f"[dim]{name}[/] step {entry['step']:>6}  loss {entry['loss']:.4f}  "
                f"{entry['steps_per_s']:.2f} steps/s  {entry['beats_per_s']:,.0f} beats/s"
            )

    outcome = train_and_register(
        cfg, out, compare_plain=compare_plain, resume=resume, register=register, tags=tags or None, on_log=log
    )
    if outcome is None:  # not rank 0
        return
    for table in report_tables(outcome.report):
        console.print(table)
    console.print(f"report: {out / 'report.json'}  params: {json.dumps(outcome.report['params'])}")
    console.print(f"MLflow run {outcome.run_id}")
    if outcome.registration:
        r = outcome.registration
        console.print(f"bat-encoder version {r['version']} is the {r['alias']} ({r['basis']})")
