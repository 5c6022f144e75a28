"""patchsmith.server: see ../shared/design/architecture.md (not yet built)."""
