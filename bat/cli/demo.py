"""``bat demo``: the main job end to end on embedded defaults (no server to install)."""

from __future__ import annotations

import typer


def demo(
    size: str = typer.Option("demo", "--size", help="Corpus subset: demo (~200 pieces) or test (~35)."),
    workers: int = typer.Option(None, "--workers", help="Parallel workers (default: all cores)."),
) -> None:
    """Build the demo corpus from music21's bundled scores, featurize it into the store, print a summary."""
    import time

    from bat.corpus.demo import build_demo_corpus
    from bat.ingest.sources import expand_inputs
    from bat.run.local import run_local
    from bat.settings import get_settings
    from bat.store import open_store

    settings = get_settings()
    started = time.perf_counter()
    typer.echo(f"1/2 converting the demo corpus from music21 into {settings.data_dir / 'corpus'} ...")
    manifest = build_demo_corpus(settings.data_dir / "corpus", size=size, workers=workers)
    sources = expand_inputs([str(manifest)])
    typer.echo(f"2/2 featurizing {len(sources)} MIDI files into {settings.store} ...")
    summary = run_local(sources, settings.store, workers=workers)
    info = open_store(settings.store).summary()
    typer.echo(
        f"this run: {summary.featurized} featurized, {summary.skipped} already there, "
        f"failed {dict(summary.failed) or 'none'}, {summary.files_per_second:.1f} files/s\n"
        f"store: {info['songs']} songs, {info['beats']} beats, {info['features']} features per beat, "
        f"meters {info['meters']}, failures {info['failures_by_category'] or 'none'}\n"
        f"done in {time.perf_counter() - started:.0f} s. Next: `.venv/bin/bat store info {settings.store}`"
    )
