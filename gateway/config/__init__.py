"""Configuration: typed immutable objects loaded from YAML."""
