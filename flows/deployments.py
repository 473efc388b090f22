"""The deployments bat serves: each flow a user triggers by name, with the defaults its runs start from.

``bat serve`` serves all of them from one process against the configured Prefect API; ``prefect.yaml``
registers the same ones on a process work pool for ``prefect deploy``. To add a flow: write
``flows/<name>.py`` with its ``@flow``, add a ``Deployment`` line below, and add the matching entry to
``prefect.yaml``. The retraining schedule comes from the settings (BAT_RETRAIN_CRON, BAT_RETRAIN_TIMEZONE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module


@dataclass(frozen=True)
class Deployment:
    """One served deployment: ``<flow name>/<name>`` to ``prefect deployment run``."""

    flow: str  # "module:attribute" of the @flow, imported only when serving
    name: str = "default"
    description: str = ""
    tags: tuple[str, ...] = ("bat",)
    parameters: dict = field(default_factory=dict)  # defaults for runs; `-p key=value` overrides them
    cron: str | None = None  # a schedule: runs start by themselves

    def load_flow(self):
        module, attribute = self.flow.split(":")
        return getattr(import_module(module), attribute)


def deployments() -> list[Deployment]:
    """bat's deployments, with the schedule and corpus the settings name."""
    from bat.settings import get_settings

    settings = get_settings()
    return [
        Deployment(
            "flows.featurize_corpus:featurize_corpus",
            description="Featurize a MIDI corpus (folder, glob, manifest or .tar.gz) into a bat store, resumably.",
            tags=("bat", "featurize"),
        ),
        Deployment(
            "flows.train_encoder:train_encoder",
            name="scheduled-retrain",
            description="Featurize what is new, retrain the encoder if data or code changed, register, promote.",
            tags=("bat", "train"),
            parameters={"corpus": settings.corpus},
            cron=settings.retrain_cron,
        ),
    ]


def runner_deployments(only: list[str] | None = None) -> list:
    """Prefect ``RunnerDeployment``s for ``prefect.serve``; ``only`` picks some by ``<flow>/<name>``."""
    from prefect.deployments.runner import EntrypointType

    served = []
    from prefect.schedules import Cron

    from bat.settings import get_settings

    timezone = get_settings().retrain_timezone
    for spec in deployments():
        flow = spec.load_flow()
        if only and f"{flow.name}/{spec.name}" not in only:
            continue
        served.append(flow.to_deployment(
            name=spec.name, description=spec.description, tags=list(spec.tags), parameters=spec.parameters,
            schedules=[Cron(spec.cron, timezone=timezone)] if spec.cron else None,
            entrypoint_type=EntrypointType.MODULE_PATH,  # `flows` is an installed package: no cwd needed
        ))
    return served
