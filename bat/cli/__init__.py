"""The ``bat`` command line. Each subcommand lives in its own module; this one only assembles them.

Heavy imports (prefect, torch, zarr) happen inside the commands, so ``bat --help`` stays instant.
"""

from __future__ import annotations

import typer

from bat import __version__
from bat.cli import corpus, demo, features, featurize, pretrain, serve, store
from bat.cli import models

app = typer.Typer(help="bat: Beat-As-Token music understanding.", no_args_is_help=True, add_completion=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bat {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """bat turns MIDI corpora into per-beat binary features and trains a Beat-As-Token encoder on them."""


app.command("featurize")(featurize.featurize)
app.command("demo")(demo.demo)
app.command("pretrain")(pretrain.pretrain)
app.command("serve")(serve.serve)
app.command("server")(serve.server)
app.add_typer(store.app, name="store")
app.add_typer(corpus.app, name="corpus")
app.add_typer(features.app, name="features")
app.add_typer(models.app, name="models")


def main() -> None:
    app()
