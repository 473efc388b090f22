"""Running the featurizer over many files: isolation per file, partitions, and the local runner."""
