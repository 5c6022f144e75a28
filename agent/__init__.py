"""patchsmith.agent: see ../shared/design/architecture.md (not yet built)."""
