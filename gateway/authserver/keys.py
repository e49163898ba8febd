"""Signing keys of the built-in authorization server (PLACEHOLDER: authserver room)."""

from __future__ import annotations

from gateway.config.model import GatewayConfig


class KeyStore:
    @classmethod
    def load(cls, config: GatewayConfig) -> KeyStore:
        return cls()
