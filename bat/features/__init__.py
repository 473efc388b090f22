"""Per-beat binary features and descriptors. The registry (``bat.features.registry``) is the one schema."""
