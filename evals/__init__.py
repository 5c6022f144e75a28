"""patchsmith.evals: audio descriptors, distances and (later) the published metrics."""
