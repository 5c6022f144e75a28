"""patchsmith.server: the DX7 tools over MCP (``app.build_server``; ``transport`` for stdio and HTTP)."""
