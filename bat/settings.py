"""One settings object for every place bat reads its environment.

Everything is overridable with a ``BAT_`` environment variable (``BAT_DATA_DIR``, ``BAT_STORE_PATH``...), so
a cluster deployment changes paths without code changes. Defaults keep all state inside the project checkout,
so the README's commands run on a fresh machine with no server installed by hand.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def project_root() -> Path:
    """The checkout bat runs from (where pyproject.toml is), else the current folder."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAT_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: project_root() / "data")
    store_path: str = ""  # empty: <data_dir>/store.zarr
    mlflow_tracking_uri: str = ""  # empty: MLFLOW_TRACKING_URI, else SQLite under mlflow/
    prefect_home: Path = Field(default_factory=lambda: project_root() / ".prefect")
    corpus_path: str = ""  # empty: <data_dir>/corpus, what train-encoder/scheduled-retrain featurizes first
    retrain_cron: str = "0 3 * * 1"  # train-encoder/scheduled-retrain: Mondays 03:00 (in retrain_timezone)
    retrain_timezone: str = "UTC"

    @property
    def store(self) -> str:
        return self.store_path or str(self.data_dir / "store.zarr")

    @property
    def corpus(self) -> str:
        return self.corpus_path or str(self.data_dir / "corpus")

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{project_root() / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return project_root() / "mlflow" / "artifacts"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def configure_prefect_env(settings: Settings | None = None) -> None:
    """Point Prefect at the project-local home before anything imports prefect.

    Prefect reads PREFECT_HOME at import time, so this must run first; an explicit PREFECT_HOME in the
    environment wins. A cold ephemeral API needs ~16 s on a new database, more than Prefect's default wait.
    """
    settings = settings or get_settings()
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
