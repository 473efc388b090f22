"""Helpers of the flow tests: tidy subprocesses, waiting, and small synthetic corpora with known answers."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.synthetic_corpus import CORRUPTIONS, CorpusFile, CorpusSpec, corrupt_midi, write_corpus

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def started(command: list[str], env: dict, log: Path, stop_timeout: float = 20.0):
    """Run ``command`` in its own process group; on exit terminate it, then kill whatever of it is left."""
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                pass
        kill_group(process)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group we created for ``process`` (its Dask workers and children included)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_for(check, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


@dataclass
class PrefectServer:
    url: str  # the API URL, .../api
    log: Path

    def env(self, **extra: str) -> dict:
        """The environment of a subprocess that talks to this server."""
        return {**os.environ, "PREFECT_API_URL": self.url, **extra}

    def get(self, path: str):
        import httpx

        return httpx.get(f"{self.url}{path}", timeout=10)

    def post(self, path: str, body: dict):
        import httpx

        return httpx.post(f"{self.url}{path}", json=body, timeout=10)


@dataclass
class Corpus:
    root: Path
    files: list[CorpusFile]

    @property
    def good(self) -> dict[str, str]:
        """content hash -> relative path, for the files that should be featurized."""
        return {f.content_hash: f.path for f in self.files if f.expected == "ok"}

    @property
    def bad(self) -> dict[str, str]:
        """relative path -> the failure category bat should record."""
        return {f.path: f.expected for f in self.files if f.expected != "ok"}


def make_corpus(root: Path, n_songs: int, corrupt_share: float, seed: int) -> Corpus:
    """Short synthetic songs (4-8 bars, fast to featurize) plus one broken file of every kind."""
    files = write_corpus(root, CorpusSpec(files=n_songs, corrupt_share=corrupt_share, min_bars=4, max_bars=8,
                                          seed=seed))
    for k, kind in enumerate(CORRUPTIONS):
        data = corrupt_midi(random.Random(seed * 100 + k), kind)
        path = root / "broken" / f"{kind}.mid"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        files.append(CorpusFile(f"broken/{kind}.mid", kind, CORRUPTIONS[kind], hashlib.sha256(data).hexdigest()))
    return Corpus(root, files)
