"""patchsmith.training: see ../shared/design/architecture.md (not yet built)."""
