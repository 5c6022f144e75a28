"""patchsmith.evals: see ../shared/design/architecture.md (not yet built)."""
