"""``bat corpus``: build ready-made MIDI corpora (one .mid per piece plus manifest.csv).

    bat corpus music21 --out data/music21 --collections bach,essenFolksong --workers 2
    bat corpus demo --out data/demo-corpus

music21 is imported inside the commands, so ``bat --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Build MIDI corpora with a manifest (from the scores bundled with music21).",
                  no_args_is_help=True)


@app.command("music21")
def music21(
    out: Path | None = typer.Option(None, "--out", help="Output folder: <collection>/... .mid files and manifest.csv."),
    collections: str = typer.Option(
        "", "--collections",
        help="Comma-separated corpus folders (bach,essenFolksong,oneills1850,palestrina...). "
        "Default: all but music21's test files (demos, theoryExercises).",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N pieces (stable order)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes (default: all cores)."),
    timeout: float = typer.Option(
        60.0, "--timeout", min=0.001, help="Seconds per piece; the worker is killed past it."
    ),
    max_mb: float = typer.Option(5.0, "--max-mb", min=0.001, help="Refuse to write a MIDI file bigger than this."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Convert again the pieces that failed before."),
    list_collections: bool = typer.Option(False, "--list", help="List the bundled collections and exit."),
) -> None:
    """Convert the corpus bundled with music21 to MIDI, one file per piece (written form, true bar lines).

    Idempotent: pieces already in the manifest are skipped, so an interrupted run resumes where it stopped.
    """
    from bat.corpus.music21_corpus import ConvertConfig, UnknownCollectionError, available_collections, convert_corpus

    if list_collections:
        typer.echo("\n".join(available_collections()))
        return
    if out is None:
        raise typer.BadParameter("where should the MIDI files go? e.g. --out data/music21", param_hint="--out")
    names = [c.strip() for c in collections.split(",") if c.strip()] or None
    config = ConvertConfig(workers=workers, timeout_s=timeout, max_bytes=int(max_mb * 1e6), retry_failed=retry_failed)
    try:
        summary = convert_corpus(out, names, limit, config, progress=_progress())
    except UnknownCollectionError as exc:
        raise typer.BadParameter(str(exc), param_hint="--collections") from exc
    if summary.converted or summary.failed:
        typer.echo(err=True)  # end the line of progress dots
    typer.echo(summary.format())


@app.command("demo")
def demo(
    out: Path = typer.Option(..., "--out", help="Output folder of the demo corpus."),
    size: str = typer.Option(
        "demo", "--size", help="demo (~180 pieces, under a minute on 2 cores) or test (~35 pieces)."
    ),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Worker processes (default: all cores)."),
) -> None:
    """Build the fixed demo subset of the music21 corpus (varied meters and textures); instant when done."""
    from bat.corpus.demo import build_demo_corpus
    from bat.corpus.manifest import read_manifest

    try:
        manifest = build_demo_corpus(out, size=size, workers=workers)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--size") from exc
    table = read_manifest(manifest)
    ok = table["status"] == "ok"
    typer.echo(f"{ok.sum()} pieces ({(~ok).sum()} failed), manifest: {manifest}")


def _progress():
    """Print a dot per converted piece and an F per failure, a line break every 100, on stderr."""
    count = 0

    def report(row: dict) -> None:
        nonlocal count
        count += 1
        typer.echo("." if row["status"] == "ok" else "F", nl=count % 100 == 0, err=True)

    return report
