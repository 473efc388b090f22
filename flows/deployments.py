"""The deployments bat serves: each flow a user triggers by name, with the defaults its runs start from.

``bat serve`` serves all of them from one process against the configured Prefect API; ``prefect.yaml``
registers the same ones on a process work pool for ``prefect deploy``. To add a flow (the retraining one,
say): write ``flows/<name>.py`` with its ``@flow``, add a ``Deployment`` line below, and add the matching
entry to ``prefect.yaml``.
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

    def load_flow(self):
        module, attribute = self.flow.split(":")
        return getattr(import_module(module), attribute)


DEPLOYMENTS = [
    Deployment(
        "flows.featurize_corpus:featurize_corpus",
        description="Featurize a MIDI corpus (folder, glob, manifest or .tar.gz) into a bat store, resumably.",
        tags=("bat", "featurize"),
    ),
]


def runner_deployments(only: list[str] | None = None) -> list:
    """Prefect ``RunnerDeployment``s for ``prefect.serve``; ``only`` picks some by ``<flow>/<name>``."""
    from prefect.deployments.runner import EntrypointType

    served = []
    for spec in DEPLOYMENTS:
        flow = spec.load_flow()
        if only and f"{flow.name}/{spec.name}" not in only:
            continue
        served.append(flow.to_deployment(
            name=spec.name, description=spec.description, tags=list(spec.tags), parameters=spec.parameters,
            entrypoint_type=EntrypointType.MODULE_PATH,  # `flows` is an installed package: no cwd needed
        ))
    return served
