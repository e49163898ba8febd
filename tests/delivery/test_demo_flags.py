"""``nid-gateway demo --delivery-max-attempts N --delivery-max-age SECONDS`` (contract:
*Reliable delivery*): the demo's limits, checked by the same model as ``gateway.yaml``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.config.loader import load_config
from gateway.serving.demo import DemoFileError, with_delivery
from tests.fixtures.docs import REPO

DEMO = REPO / "config" / "demo" / "gateway.yaml"


def test_the_demo_backs_off_from_at_most_1_s_capped_at_10_s() -> None:
    delivery = load_config(DEMO).delivery
    assert delivery.backoff_initial * 2 <= 1.0  # first wait: initial plus up to initial
    assert delivery.backoff_max == 10


def test_the_flags_set_the_demos_limits_and_keep_the_rest() -> None:
    config = load_config(DEMO)
    changed = with_delivery(config, 3, 42.5).delivery
    assert (changed.max_attempts, changed.max_age) == (3, 42.5)
    assert changed.backoff_max == config.delivery.backoff_max
    assert with_delivery(config, None, None) is config


@pytest.mark.parametrize(
    ("attempts", "age", "message"),
    [(0, None, "--delivery-max-attempts: "), (None, 0.0, "--delivery-max-age: ")],
)
def test_a_bad_flag_is_named(attempts: int | None, age: float | None, message: str) -> None:
    with pytest.raises(DemoFileError, match=message):
        with_delivery(load_config(DEMO), attempts, age)


def test_a_bad_flag_stops_the_demo_with_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--port", "0",
         "--delivery-max-attempts", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--delivery-max-attempts: Input should be greater than or equal to 1" in result.stderr
