"""``server.max_connections`` against the open-file limit: what the limit leaves room for."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from gateway.config.loader import load_config
from gateway.server.runner import BACKLOG, FD_RESERVE, connection_limit

ROUTE = """  - path: /deelnemers/uzovi/{n}/graphql
    upstream: {upstream}
    deelnemer: {{id_type: UZOVI, id: "{n}", kind: zorgkantoor}}
    policies: [{policies}]
    pool_size: 100
"""
POLICIES = Path(__file__).resolve().parents[2] / "policies" / "iwlz"


def config(tmp_path: Path, upstreams: list[str], max_connections: int = 1000) -> Path:
    routes = "".join(
        ROUTE.format(n=5000 + i, upstream=url, policies=POLICIES) for i, url in enumerate(upstreams)
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"public_url: https://gateway.test\nissuer: https://gateway.test\n"
        f"server: {{max_connections: {max_connections}}}\n"
        f"tokens: {{trusted_issuers: [{{issuer: https://idp.test, "
        f"jwks_url: https://idp.test/jwks}}]}}\nroutes:\n{routes}"
    )
    return path


@pytest.fixture
def open_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, resource.RLIM_INFINITY))


@pytest.mark.usefixtures("open_files")
def test_routes_sharing_an_upstream_origin_count_one_pool(tmp_path: Path) -> None:
    shared = ["http://10.0.0.1:9000/graphql"] * 4
    assert connection_limit(load_config(config(tmp_path, shared))) == (
        1024 - FD_RESERVE - 2 * BACKLOG - 100
    )


@pytest.mark.usefixtures("open_files")
def test_each_upstream_origin_counts_its_own_pool(tmp_path: Path) -> None:
    apart = [f"http://10.0.0.{i}:9000/graphql" for i in range(1, 5)]
    assert connection_limit(load_config(config(tmp_path, apart))) == (
        1024 - FD_RESERVE - 2 * BACKLOG - 400
    )


@pytest.mark.usefixtures("open_files")
def test_a_limit_that_fits_is_kept(tmp_path: Path) -> None:
    path = config(tmp_path, ["http://10.0.0.1:9000/graphql"], max_connections=100)
    assert connection_limit(load_config(path)) == 100
