"""patchsmith.schema: the one patch format, its validation, metadata and converters."""
