"""Configuration: typed immutable objects (``model``) loaded from YAML (``loader``).

Nothing is imported here, so that a part needing only :mod:`gateway.config.errors` or the
YAML reader does not load pydantic and the loader.
"""
