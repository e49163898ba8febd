"""Configuration: typed immutable objects loaded from YAML."""

from gateway.config.errors import ConfigError
from gateway.config.loader import load_config

__all__ = ["ConfigError", "load_config"]
