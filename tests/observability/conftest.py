"""The observability tests' fixture: a real gateway.yaml with chosen observability keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.loader import load_config
from gateway.config.model import GatewayConfig
from tests.fixtures.observability import base_config


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., GatewayConfig]:
    """Write a gateway.yaml with the given ``observability`` keys and load it."""

    def write(**observability: Any) -> GatewayConfig:
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(base_config(**observability)))
        return load_config(path)

    return write
