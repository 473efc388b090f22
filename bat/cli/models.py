"""``bat models``: the registered encoders in MLflow (``bat-encoder``), their aliases and scores.

    bat models list                 # every version, newest first, with its aliases and validation loss
    bat models show @champion       # one version by alias, or by number: bat models show 3
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Registered encoder versions in MLflow.", no_args_is_help=True)


def _connect(tracking_uri: str) -> None:
    import mlflow

    from bat.settings import get_settings

    mlflow.set_tracking_uri(tracking_uri or get_settings().tracking_uri)


@app.command("list")
def list_models(
    name: str = typer.Option("bat-encoder", "--name", help="Registered model name."),
    tracking_uri: str = typer.Option("", "--tracking-uri", help="MLflow tracking URI (default: the settings')."),
) -> None:
    """Every version of the registered model, newest first."""
    from rich.console import Console
    from rich.table import Table

    from bat.registry.models import list_versions

    _connect(tracking_uri)
    rows = list_versions(name)
    if not rows:
        typer.echo(f"no versions of {name!r} registered yet; train with `bat pretrain --register`")
        return
    table = Table(title=name)
    for col in ("version", "aliases", "val_loss", "run_id"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["version"], ", ".join(r["aliases"]) or "-", r["val_loss"] or "-", r["run_id"] or "-")
    Console(width=140).print(table)


@app.command("show")
def show(
    ref: str = typer.Argument("@champion", help="Version number, or @alias (e.g. @champion)."),
    name: str = typer.Option("bat-encoder", "--name", help="Registered model name."),
    tracking_uri: str = typer.Option("", "--tracking-uri", help="MLflow tracking URI (default: the settings')."),
) -> None:
    """One version: aliases, tags, source run and the URI to load it with."""
    import mlflow

    from bat.registry.models import get_version

    _connect(tracking_uri)
    try:
        v = get_version(ref, name)
    except mlflow.exceptions.MlflowException as e:
        typer.echo(f"{name} {ref}: not found ({e.message}); see `bat models list`", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{name} version {v.version}")
    typer.echo(f"  aliases: {', '.join(v.aliases) or '-'}")
    typer.echo(f"  run_id:  {v.run_id}")
    typer.echo(f"  source:  {v.source}")
    for key, value in sorted(v.tags.items()):
        typer.echo(f"  tag {key}: {value}")
    typer.echo(f"  load:    mlflow.pyfunc.load_model('models:/{name}/{v.version}')")
