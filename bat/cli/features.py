"""``bat features``: the feature schema."""

from __future__ import annotations

import typer

app = typer.Typer(help="The per-beat feature schema.", no_args_is_help=True)


@app.command("list")
def list_features(group: str = typer.Option(None, "--group", help="Only this group (meter, harmony, ...).")) -> None:
    """Every feature with its column, group and meaning."""
    from bat.features.registry import FEATURES

    for column, feature in enumerate(FEATURES):
        if group is None or feature.group == group:
            typer.echo(f"{column}\t{feature.group}\t{feature.name}\t{feature.doc}")


@app.command("docs")
def docs(write: bool = typer.Option(False, "--write", help="Rewrite docs/features.md instead of printing.")) -> None:
    """The markdown table of features and descriptors (docs/features.md)."""
    from bat.features import docs as feature_docs

    if write:
        typer.echo(f"wrote {feature_docs.write()}")
    else:
        typer.echo(feature_docs.render(), nl=False)


@app.command("show")
def show(
    path: str = typer.Argument(..., help="A MIDI or audio file, or a folder of one song's stems."),
    beats: int = typer.Option(16, help="How many beats."),
) -> None:
    """Featurize one file and print, beat by beat, the features that are on."""
    from bat.featurize import featurize_path

    song = featurize_path(path)
    typer.echo(f"{song.n_beats} beats, meter {song.meter}, grid from {song.beat_source}")
    for i in range(min(beats, song.n_beats)):
        on = [song.feature_names[j] for j in song.features[i].nonzero()[0]]
        typer.echo(f"{i:4d} {song.beat_times[i]:8.3f}s  {' '.join(on)}")
