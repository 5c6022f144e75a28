"""patchsmith: words to interpretable DX7 FM patches and their sound."""

__version__ = "0.1.0"
