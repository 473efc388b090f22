"""Runs and models in MLflow: ``tracking`` logs a training run (config, data identity, metrics, report),
``models`` registers the trained encoder as ``bat-encoder`` with champion/challenger aliases.

mlflow is imported by those modules, not here, so ``import bat.registry`` stays cheap."""
