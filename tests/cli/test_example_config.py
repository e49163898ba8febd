"""The production example (config/example) loads as shipped, laid out the way the container
image and docs/operations.md describe: TLS files and keys beside it, the environment
variables it names set, and the policies/schema at the paths the Dockerfile copies them to."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import shutil
import ssl
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.authserver.signing_keys import KeyStore, generate_key
from gateway.config.errors import ConfigError
from gateway.config.loader import load_config
from gateway.config.model import GatewayConfig
from gateway.config.secrets import parse_secret_hash, verify_secret
from gateway.graphql import BUNDLED_SCHEMA
from gateway.observability.http import healthz_handler
from gateway.serving.lifecycle import build_ssl_context

REPO = Path(__file__).resolve().parents[2]
SHARE = "/usr/share/nid-gateway"
ENV = {
    "RESOURCE_SERVER_URL": "https://rs.zorgkantoor-noord.example.nl/graphql",
    "VECOZO_SUPPORT_CLIENT_SECRET": "a-long-random-secret-from-the-vault",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318",
}


def dockerfile_copies() -> dict[str, Path]:
    """Image path -> source in this repository, from the Dockerfile's plain COPY lines."""
    copies: dict[str, Path] = {}
    for line in (REPO / "Dockerfile").read_text().splitlines():
        match = re.fullmatch(r"COPY (\S+) (/\S+)", line.strip())
        if match:
            copies[match[2]] = REPO / match[1]
    return copies


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Zorgkantoor Noord"),
        ]
    )


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: Any, *, ca: bool
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("gateway.zorgkantoor-noord.example.nl"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_tls(directory: Path) -> None:
    """tls/server.crt + server.key (signed by a server CA) and tls/client-ca.crt."""
    directory.mkdir()
    server_ca_key = ec.generate_private_key(ec.SECP256R1())
    server_ca = _certificate("server CA", server_ca_key, "server CA", server_ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(
        "gateway.zorgkantoor-noord.example.nl", server_key, "server CA", server_ca_key, ca=False
    )
    (directory / "server.crt").write_bytes(_pem(server) + _pem(server_ca))
    (directory / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    client_ca_key = ec.generate_private_key(ec.SECP256R1())
    client_ca = _certificate("client CA", client_ca_key, "client CA", client_ca_key, ca=True)
    (directory / "client-ca.crt").write_bytes(_pem(client_ca))


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """config/example deployed to tmp_path the way docs/operations.md says; gateway.yaml."""
    etc = tmp_path / "etc" / "nid-gateway"
    shutil.copytree(REPO / "config" / "example", etc)
    write_tls(etc / "tls")
    generate_key(etc / "keys", "ES256")
    # What the image holds under /usr/share/nid-gateway, from the Dockerfile's COPY lines.
    share = tmp_path / "usr" / "share" / "nid-gateway"
    for target, source in dockerfile_copies().items():
        if target.startswith(SHARE + "/"):
            dest = share / target.removeprefix(SHARE + "/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest)
            else:
                shutil.copy(source, dest)  # follows symlinks, as docker COPY of a file does
    gateway_yaml = etc / "gateway.yaml"
    text = gateway_yaml.read_text()
    assert SHARE + "/" in text  # the example names the image's policies and schema
    gateway_yaml.write_text(text.replace(SHARE + "/", f"{share}/"))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return gateway_yaml


def test_dockerfile_runs_serve_as_a_non_root_user_with_a_healthcheck() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2  # build stage + runtime stage
    assert re.search(r"^USER nid:nid$", text, re.M)
    assert re.search(r'^  CMD \["python", "-m", "gateway.healthcheck"\]$', text, re.M)
    assert text.rstrip().endswith(
        'CMD ["nid-gateway", "serve", "--config", "/etc/nid-gateway/gateway.yaml"]'
    )
    copies = dockerfile_copies()
    assert copies[f"{SHARE}/policies"] == REPO / "policies"
    assert copies[f"{SHARE}/schemas/netwerkpunt.graphql"].resolve() == BUNDLED_SCHEMA.resolve()
    assert BUNDLED_SCHEMA.is_file()
    # The repository path the docs use points at the same (packaged) file.
    assert (REPO / "config/schemas/netwerkpunt.graphql").resolve() == BUNDLED_SCHEMA.resolve()


def test_production_example_loads_with_tls_keys_and_environment(example: Path) -> None:
    config = load_config(example)
    etc = example.parent

    assert config.public_url == "https://gateway.zorgkantoor-noord.example.nl"
    assert (config.server.host, config.server.port) == ("0.0.0.0", 8443)
    tls = config.server.tls
    assert tls is not None and tls.cert_file == etc / "tls" / "server.crt"
    assert tls.client_ca_file == etc / "tls" / "client-ca.crt" and not tls.require_client_cert
    context = build_ssl_context(tls)  # the certificate, key and CA really load
    assert context.verify_mode == ssl.CERT_OPTIONAL

    assert config.authserver is not None and config.authserver.enabled
    assert config.authserver.signing.keys_dir == etc / "keys"
    assert KeyStore.load(config).signing_kid
    clients = {c.client_id: c for c in config.authserver.clients}
    ciz = clients["ciz"]
    assert ciz.auth_method == ("private_key_jwt",) and ciz.jwks is not None
    assert ciz.identifier_claims == {"kvk": "62253778"}
    assert clients["zorgaanbieder-12345678"].auth_method == ("tls_client_auth",)
    support = clients["vecozo-support"]
    assert support.secret_hash is not None
    salt, digest = parse_secret_hash(support.secret_hash)
    assert verify_secret(ENV["VECOZO_SUPPORT_CLIENT_SECRET"], salt, digest)
    assert ENV["VECOZO_SUPPORT_CLIENT_SECRET"] not in repr(config)  # hashed at load

    builtin, nid = config.tokens.trusted_issuers
    assert builtin.builtin and builtin.issuer == config.issuer
    assert nid.issuer == "https://nid.vecozo.example.nl"
    assert nid.jwks_url == "https://nid.vecozo.example.nl/.well-known/jwks.json"
    assert not nid.require_typ

    (route,) = config.routes
    assert route.upstream == ENV["RESOURCE_SERVER_URL"]
    assert route.audience == config.public_url + "/deelnemers/uzovi/5151/graphql"
    assert [p.name for p in route.policies] == ["iwlz"] and route.policies[0].is_dir()
    assert route.schema is not None
    assert route.schema.read_text() == BUNDLED_SCHEMA.read_text()

    assert config.policy.environment == "productie" and not config.policy.watch
    obs = config.observability
    assert obs.audit is not None and obs.audit.path == Path("/var/log/nid-gateway/audit.jsonl")
    assert obs.log_format == "json" and not obs.access_log
    assert obs.otel_endpoint == ENV["OTEL_EXPORTER_OTLP_ENDPOINT"]


def test_production_example_without_its_environment_names_the_variable(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RESOURCE_SERVER_URL")
    with pytest.raises(ConfigError, match="environment variable RESOURCE_SERVER_URL is not set"):
        load_config(example)


async def _healthcheck(url: str) -> int:
    # A subprocess: the probe blocks, and this loop must keep serving it.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.healthcheck", url, cwd=REPO
    )
    return await asyncio.wait_for(proc.wait(), 60)


async def test_container_healthcheck_probes_the_example_tls_listener(example: Path) -> None:
    config: GatewayConfig = load_config(example)
    assert config.server.tls is not None
    app = web.Application()
    app.router.add_get("/healthz", healthz_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=build_ssl_context(config.server.tls))
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await _healthcheck(f"https://127.0.0.1:{port}/healthz") == 0
        assert await _healthcheck(f"https://127.0.0.1:{port}/nothing-here") == 1
    finally:
        await runner.cleanup()
    assert await _healthcheck(f"https://127.0.0.1:{port}/healthz") == 1  # nobody listens
