"""``bat featurize``: MIDI files, folders or manifests into a store, with a progress bar and a summary."""

from __future__ import annotations

from pathlib import Path

import typer


def featurize(
    inputs: list[str] = typer.Argument(..., help="MIDI files, folders, glob patterns or manifests (manifest.csv)."),
    store: str = typer.Option(None, "--store", help="Store path (default: BAT_STORE_PATH or data/store.zarr)."),
    meter: str = typer.Option(None, "--meter", help="Keep only songs in this meter, e.g. 4/4."),
    workers: int = typer.Option(None, "--workers", help="Parallel workers (default: all cores)."),
    partition_size: int = typer.Option(64, "--partition-size", help="Files per partition (one store part each)."),
    limit: int = typer.Option(None, "--limit", help="Featurize at most this many files."),
    timeout: float = typer.Option(60.0, "--timeout", help="Per-file time limit in seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Featurize MIDI files into the Zarr store; songs already in it are skipped, failures are recorded."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bat.ingest.sources import expand_inputs
    from bat.run.local import run_local
    from bat.settings import get_settings

    store = store or get_settings().store
    try:
        sources = expand_inputs(inputs, limit=limit)
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error
    console = Console(stderr=True)
    with Progress(
        TextColumn("featurizing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} files/s"),
        TimeRemainingColumn(), console=console, disable=json_out or not sources,
    ) as progress:
        task = progress.add_task("files", total=len(sources), rate="-")
        summary = run_local(
            sources, store, workers=workers, partition_size=partition_size, meter=meter, timeout=timeout,
            on_progress=lambda result, s: progress.update(task, advance=result.files, rate=f"{s.files_per_second:.0f}"),
        )
    if json_out:
        typer.echo(json.dumps({"store": store, **summary.as_dict()}))
        return
    failed = ", ".join(f"{k} {v}" for k, v in sorted(summary.failed.items())) or "none"
    typer.echo(
        f"{summary.files} files: {summary.featurized} featurized, {summary.skipped} already in the store, "
        f"failed: {failed}\n{summary.beats} beats written in {summary.seconds:.1f} s "
        f"({summary.files_per_second:.1f} files/s) to {Path(store)}"
    )
