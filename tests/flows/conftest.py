"""Fixtures for the featurize-corpus flow tests: a real Prefect server, real corpora, tidy subprocesses.

Prefect reads PREFECT_HOME when it is imported, so this module points it at a per-session temporary folder
before any test imports prefect (and drops a developer's PREFECT_API_URL: tests never talk to a real
deployment). One real server (``prefect server start`` on a free port) serves the whole session: in-process
flow runs use it through ``prefect_api`` and subprocesses get its URL in their environment, which is faster
than Prefect's embedded API (a cold start per process) and is what users run.
"""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

_HOME = tempfile.mkdtemp(prefix="bat-test-prefect-")
os.environ["PREFECT_HOME"] = _HOME
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"

from bat.settings import configure_prefect_env  # noqa: E402
from tests.flows.helpers import Corpus, PrefectServer, free_port, make_corpus, started, wait_for  # noqa: E402

configure_prefect_env()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real Prefect server with its own PREFECT_HOME, on a free port, for the whole session."""
    import httpx

    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
    log = home / "server.log"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with started(command, env, log) as process:
        url = f"http://127.0.0.1:{port}/api"

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the Prefect server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 120, "the Prefect server's /api/health")
        yield PrefectServer(url, log)


@pytest.fixture
def prefect_api(prefect_server):
    """In-process flow runs in this test report to the session's server."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.url}):
        yield prefect_server
        # send the run's logs and events while the server is up, not at exit to a stopped one (slow retries)
        APILogWorker.drain_all(timeout=30)
        EventsWorker.drain_all(timeout=30)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Corpus:
    """~40 files: 36 synthetic (a few corrupt) and one broken file of every kind."""
    return make_corpus(tmp_path_factory.mktemp("small-corpus"), 36, 0.1, seed=1)
