"""The application key of the loaded configuration.

Here rather than in :mod:`gateway.appkeys` so that observability (which imports at most
config) can tell whether a configuration was loaded without importing the wiring.
"""

from __future__ import annotations

from aiohttp import web

from gateway.config.model import GatewayConfig

CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config")
