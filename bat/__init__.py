"""bat: Beat-As-Token music understanding.

The package mirrors the pipeline: ``ingest`` (MIDI files into songs) -> ``beats`` (the beat grid and the
notes of each beat) -> ``features`` (binary per-beat features and descriptors) -> ``store`` (chunked Zarr)
-> ``model`` / ``train`` -> ``registry``.
"""

__version__ = "0.1.0"
