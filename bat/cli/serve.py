"""``bat server`` starts a local Prefect server; ``bat serve`` serves bat's deployments (flows/deployments.py).

The two together are the whole orchestration stack on one machine::

    bat server                                      # shell 1: Prefect API and UI, state in .prefect/
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    bat serve                                       # shell 2: runs whatever is triggered
    prefect deployment run featurize-corpus/default -p corpus=lmd_full.tar.gz -p store=data/lmd.zarr

In production, point PREFECT_API_URL at the shared server instead (infra/docker-compose.yml).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import typer


def serve(
    only: list[str] = typer.Option(None, "--only", help="Serve only this deployment (<flow>/<name>); repeatable."),
    limit: int = typer.Option(None, "--limit", help="Most flow runs at once (default: no limit)."),
) -> None:
    """Serve bat's deployments (featurize-corpus/default, ...) until stopped, against PREFECT_API_URL."""
    from bat.settings import configure_prefect_env

    configure_prefect_env()
    if not os.environ.get("PREFECT_API_URL"):
        typer.echo(
            "PREFECT_API_URL is not set: serving against Prefect's embedded API in "
            f"{os.environ['PREFECT_HOME']}. For a UI and runs triggered from other shells, start `bat server` "
            "and export PREFECT_API_URL=http://127.0.0.1:4200/api first.", err=True,
        )
    from prefect import serve as prefect_serve

    from flows.deployments import runner_deployments

    deployments = runner_deployments(only)
    if not deployments:
        raise typer.BadParameter(f"no deployment named {', '.join(only)}", param_hint="--only")
    prefect_serve(*deployments, limit=limit, pause_on_shutdown=False)


def server(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for other machines)."),
    port: int = typer.Option(4200, "--port", help="Port of the API and UI."),
) -> None:
    """Start a Prefect server (API and UI) whose state lives in the project (.prefect/, or BAT_PREFECT_HOME)."""
    from bat.settings import configure_prefect_env

    configure_prefect_env()
    url = f"http://{host}:{port}"
    typer.echo(
        f"Prefect server at {url} (state in {os.environ['PREFECT_HOME']}). In another shell:\n"
        f"  export PREFECT_API_URL={url}/api\n  bat serve", err=True,
    )
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    child = subprocess.Popen(command, env=os.environ.copy())

    def stop(signum, frame) -> None:
        child.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        code = child.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the child too; give it time to shut down cleanly
        try:
            code = child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
    raise typer.Exit(code if code >= 0 else 0)
