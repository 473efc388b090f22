"""``bat pretrain``: masked-beat pretraining of the Beat-As-Token encoder on a featurized store.

    bat pretrain --store data/store.zarr --config tiny --steps 2000 --out runs/tiny
    bat pretrain --store synthetic:64 --steps 200 --max-len 128 --out runs/smoke   # made-up songs, no data
    bat pretrain --store synthetic:64 --steps 200 --deepspeed --zero-stage 1 --register   # DeepSpeed, MLflow

Writes ``model.pt`` (and ``plain.pt``, the plain encoder trained the same way as a baseline) and
``report.json`` into ``--out``, and prints the held-out scores next to the baselines.
"""

from __future__ import annotations

from pathlib import Path

import typer


def pretrain(
    store: str = typer.Option("", "--store", help="Featurized store (default: the settings' store), or synthetic:N."),
    config: str = typer.Option("tiny", "--config", help="Model size: tiny, small or base."),
    pairwise: bool = typer.Option(True, "--pairwise/--no-pairwise", help="Pairwise beat features in the first layer."),
    compare_plain: bool = typer.Option(
        True, "--compare-plain/--no-compare-plain", help="Also train the plain encoder as a baseline."
    ),
    steps: int = typer.Option(1000, "--steps", help="Optimizer steps per model."),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per step."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate."),
    max_len: int = typer.Option(512, "--max-len", help="Beats per window."),
    mask_rate: float = typer.Option(0.15, "--mask-rate", help="Fraction of beats (or bars) to hide."),
    mask_bars: bool = typer.Option(False, "--mask-bars", help="Hide whole bars instead of single beats."),
    num_workers: int = typer.Option(0, "--num-workers", help="DataLoader worker processes."),
    eval_songs: int = typer.Option(0, "--eval-songs", help="Score at most this many validation songs (0: all)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1..."),
    out: Path = typer.Option(Path("runs/pretrain"), "--out", help="Folder for the checkpoints and report.json."),
    seed: int = typer.Option(0, "--seed", help="Seed for init, crops and masks."),
    deepspeed: bool = typer.Option(False, "--deepspeed/--no-deepspeed", help="Train through a DeepSpeed engine."),
    zero_stage: int = typer.Option(0, "--zero-stage", help="DeepSpeed ZeRO stage (0-3), with --deepspeed."),
    ds_config: Path = typer.Option(None, "--ds-config", help="JSON merged over the generated DeepSpeed config."),
    register: bool = typer.Option(
        False, "--register/--no-register", help="Log the run to MLflow and register the model as bat-encoder."
    ),
) -> None:
    """Pretrain the encoder by masked-beat prediction; report held-out AUROC/F1 against the baselines."""
    import json

    from rich.console import Console

    from bat.model import CONFIGS
    from bat.train import PretrainConfig, run_pretrain
    from bat.train.evaluate import report_tables

    console = Console()
    if config not in CONFIGS:
        choices = ", ".join(CONFIGS)
        raise typer.BadParameter(f"unknown config {config!r}; choose one of {choices}", param_hint="--config")
    if not store:
        from bat.settings import get_settings

        store = get_settings().store
    cfg = PretrainConfig(
        store=store,
        model=config,
        pairwise=pairwise,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        max_len=max_len,
        mask_rate=mask_rate,
        mask_span="bar" if mask_bars else "beat",
        num_workers=num_workers,
        max_eval_songs=eval_songs,
        device=device,
        seed=seed,
        log_every=max(1, min(100, steps // 10)),
    )

    def log(name: str, entry: dict) -> None:
        rate = entry["steps_per_s"]
        console.print(f"[dim]{name}[/] step {entry['step']:>6}  loss {entry['loss']:.4f}  {rate:.2f} steps/s")

    ds = None
    if deepspeed:
        from bat.train.deepspeed_engine import deepspeed_config, run_pretrain_deepspeed

        ds = deepspeed_config(cfg, zero_stage=zero_stage, overrides=ds_config)
        report = run_pretrain_deepspeed(cfg, out, ds, compare_plain=compare_plain, on_log=log)
    else:
        report = run_pretrain(cfg, out, compare_plain=compare_plain, on_log=log)
    for table in report_tables(report):
        console.print(table)
    console.print(f"report: {out / 'report.json'}  params: {json.dumps(report['params'])}")
    if register:
        from bat.registry.models import register_encoder
        from bat.registry.tracking import log_training_run

        run_id = log_training_run(report, cfg, out, ds_config=ds)
        decided = register_encoder(out / "model.pt", run_id, val_loss=report["model"]["loss"])
        console.print(f"MLflow run {run_id}: bat-encoder version {decided['version']} is the {decided['alias']}")
