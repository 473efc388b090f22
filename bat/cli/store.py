"""``bat store``: look inside a store."""

from __future__ import annotations

import typer

app = typer.Typer(help="Inspect a bat store.", no_args_is_help=True)


@app.command("info")
def info(
    path: str = typer.Argument(None, help="Store path (default: BAT_STORE_PATH or data/store.zarr)."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Songs, beats, failures by category and schema of a store."""
    import json

    from bat.settings import get_settings
    from bat.store import StoreError, open_store

    path = path or get_settings().store
    try:
        summary = open_store(path).summary()
    except StoreError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"store      {summary['path']}")
    typer.echo(f"schema     {summary['schema_version']} ({summary['features']} features, {summary['descriptors']} descriptors)")
    typer.echo(f"songs      {summary['songs']}")
    typer.echo(f"beats      {summary['beats']}")
    failures = ", ".join(f"{k} {v}" for k, v in sorted(summary["failures_by_category"].items())) or "none"
    typer.echo(f"failures   {summary['failures']} ({failures})")
    meters = ", ".join(f"{k} {v}" for k, v in summary["meters"].items()) or "-"
    typer.echo(f"meters     {meters}")


@app.command("failures")
def failures(
    path: str = typer.Argument(None, help="Store path."),
    category: str = typer.Option(None, "--category", help="Only this category (read, parse, empty, meter, timeout, too_large)."),
) -> None:
    """List the files that could not be featurized, with their category and reason."""
    from bat.settings import get_settings
    from bat.store import open_store

    table = open_store(path or get_settings().store).failures
    if category:
        table = table[table["category"] == category]
    for row in table.itertuples():
        typer.echo(f"{row.category}\t{row.source}\t{row.message}")
