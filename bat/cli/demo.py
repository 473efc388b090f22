"""``bat demo``: the main job end to end on embedded defaults (no server to install).

music21's bundled scores become a MIDI corpus; the train-encoder flow (Prefect's embedded API) featurizes it
on a local Dask cluster, pretrains the tiny encoder (and its plain twin) through DeepSpeed on this machine,
logs the run to the SQLite MLflow store under mlflow/ and registers the model as ``bat-encoder``. A second
``bat demo`` finds nothing new and says so; ``--force`` retrains.
"""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_STEPS = 300  # tiny encoder and its plain twin on the demo corpus: about 4 minutes on 2 CPU cores


def demo(
    size: str = typer.Option("demo", "--size", help="Corpus subset: demo (~200 pieces) or test (~35)."),
    workers: int = typer.Option(None, "--workers", help="Parallel workers for featurizing (default: all cores)."),
    steps: int = typer.Option(DEMO_STEPS, "--steps", help="Training steps of the tiny encoder."),
    force: bool = typer.Option(False, "--force", help="Retrain even if neither the data nor the code changed."),
) -> None:
    """Build the demo corpus, featurize it, pretrain the tiny encoder, register it, print where to look."""
    import os
    import time

    from bat.settings import configure_prefect_env, get_settings

    configure_prefect_env()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from bat.corpus.demo import build_demo_corpus

    settings = get_settings()
    started = time.perf_counter()
    typer.echo(f"1/3 converting the demo corpus from music21 into {settings.data_dir / 'corpus'} ...")
    manifest = build_demo_corpus(settings.data_dir / "corpus", size=size, workers=workers)
    typer.echo(f"2/3 train-encoder flow: featurize into {settings.store}, pretrain the tiny encoder, register it ...")
    from flows.train_encoder import train_encoder

    result = train_encoder(
        corpus=str(manifest), store=settings.store, config="tiny", steps=steps, max_len=128,
        out=str(settings.data_dir.parent / "runs" / "demo"), force=force, workers=workers,
    )
    typer.echo("3/3 done in %.0f s\n" % (time.perf_counter() - started))
    _print_result(result, settings)


def _print_result(result: dict, settings) -> None:
    from rich.console import Console

    from bat.store import open_store

    console = Console(soft_wrap=True)
    info = open_store(settings.store).summary()
    featurized = result.get("featurized") or {}
    console.print(
        f"store {settings.store}: {info['songs']} songs, {info['beats']:,} beats, {info['features']} features per "
        f"beat; this run featurized {featurized.get('featurized', 0)}, failures {info['failures_by_category'] or 'none'}"
    )
    if result["skipped"]:
        console.print(result["reason"])
    else:
        reg = result["registration"]
        console.print(f"[bold]bat-encoder version {reg['version']} is the {reg['alias']}[/] ({reg['basis']})")
        rows = [("encoder", result["scores"]["model"]), *result["scores"]["baselines"].items()]
        console.print("held-out masked-beat prediction (loss / macro AUROC / macro F1):")
        for name, row in rows:
            if row:
                console.print(f"  {name:<18} {row['loss']:8.3f} {row['auroc_macro']:8.3f} {row['f1_macro']:8.3f}")
        console.print(f"MLflow run {result['run_id']}; report and checkpoints in {result['out']}")
    db = settings.tracking_uri
    artifacts = settings.mlflow_artifacts
    if db.startswith("sqlite:///"):  # bat keeps artifacts beside the database (bat.registry.tracking)
        artifacts = Path(db.removeprefix("sqlite:///")).parent / "artifacts"
    console.print(
        "\nLook around:\n"
        "  .venv/bin/bat models list                      # the registry: versions, aliases, validation loss\n"
        "  .venv/bin/bat models show @champion\n"
        f"  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false .venv/bin/mlflow server --backend-store-uri {db} "
        f"--default-artifact-root {artifacts} --port 5000   # MLflow UI: http://127.0.0.1:5000\n"
        "  .venv/bin/bat server                           # Prefect UI with this run: http://127.0.0.1:4200"
    )
