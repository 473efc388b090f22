"""``bat featurize``: the featurize-corpus flow, run in this process, with a progress bar and a summary.

It is the same Prefect flow the ``featurize-corpus/default`` deployment runs (flows/featurize_corpus.py): a
local Dask cluster, one committer, resumable. With no PREFECT_API_URL set, Prefect starts its embedded API
for the run (~10-20 s); with one set (``bat server``), the run shows up in that server's UI.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer


def featurize(
    inputs: list[str] = typer.Argument(..., help="MIDI or audio files, folders (a folder of one song's stems is that song), "
                                       "glob patterns, manifests (manifest.csv), "
                                       "tar archives (lmd_full.tar.gz, streamed) or fsspec URLs."),
    store: str = typer.Option(None, "--store", help="Store path (default: BAT_STORE_PATH or data/store.zarr)."),
    meter: str = typer.Option(None, "--meter", help="Keep only songs in this meter, e.g. 4/4."),
    workers: int = typer.Option(None, "--workers", help="Parallel workers (default: all cores)."),
    partition_size: int = typer.Option(64, "--partition-size", help="Files per partition (one store part each)."),
    limit: int = typer.Option(None, "--limit", help="Featurize at most this many files."),
    timeout: float = typer.Option(60.0, "--timeout", help="Per-file time limit in seconds."),
    dask_address: str = typer.Option(None, "--dask-address", help="Use this Dask scheduler, not a local cluster."),
    force: bool = typer.Option(False, "--force", help="Delete the store first and featurize everything again."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the flow's log, not only the bar."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Featurize MIDI and audio files (and songs of stems) into the Zarr store; songs already in it are skipped,
    failures are recorded."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bat.settings import configure_prefect_env, get_settings

    if not verbose:  # the progress bar tells the story; the run's log still goes to the Prefect API
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    configure_prefect_env()
    from bat.ingest.sources import open_corpus

    store = store or get_settings().store
    try:
        open_corpus(inputs, limit=limit)  # a bad input is the user's to fix: say so before any Prefect work
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error
    from flows.featurize_corpus import featurize_corpus

    console = Console(stderr=True)
    with Progress(
        TextColumn("featurizing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} files/s"),
        TimeRemainingColumn(), console=console, disable=json_out,
    ) as progress:
        task = progress.add_task("files", total=None, rate="-")

        def on_progress(summary, total) -> None:
            progress.update(task, completed=summary.files, total=total, rate=f"{summary.files_per_second:.0f}")

        summary = featurize_corpus(
            corpus=inputs, store=store, partition_size=partition_size, dask_address=dask_address, workers=workers,
            meter=meter, limit=limit, timeout=timeout, force=force, on_progress=on_progress,
        )
    if json_out:
        typer.echo(json.dumps(summary))
        return
    failed = ", ".join(f"{k} {v}" for k, v in sorted(summary["failed"].items())) or "none"
    typer.echo(
        f"{summary['files']} files: {summary['featurized']} featurized, {summary['skipped']} already in the store, "
        f"failed: {failed}\n{summary['beats']} beats written in {summary['seconds']:.1f} s "
        f"({summary['files_per_second']:.1f} files/s) to {Path(store)}"
    )
