"""Tokens issued per second on one core: client_secret_basic and private_key_jwt.

Starts the real gateway (``nid-gateway serve``) as a subprocess pinned to CPU 0 with a
temporary deployment (ES256 signing key, one secret client, one private_key_jwt client),
drives it from this process (pinned to CPU 1) with a small keep-alive aiohttp load client,
and prints tokens/s per method. Bounded: a few seconds per method.

    .venv/bin/python bench/bench_tokens.py [--seconds 5] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.authserver.signing_keys import generate_key  # noqa: E402
from gateway.config.secrets import hash_secret  # noqa: E402

SCOPE = "organisaties/zorgkantoor/notificaties/notificatie:create"
SECRET = "bench-secret-" + "x" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_deployment(directory: Path, port: int, jwk: dict[str, Any]) -> Path:
    (directory / "policies").mkdir()
    generate_key(directory / "keys", "ES256")
    public = f"http://127.0.0.1:{port}"
    clients = {
        "clients": [
            {
                "client_id": "bench-basic",
                "auth_method": "client_secret_basic",
                "secret_hash": hash_secret(SECRET),
                "instantie_type": "Onderneming",
                "identifiers": {"kvk": "62253778"},
                "allowed_scopes": [SCOPE],
                "allowed_audiences": ["*routes*"],
            },
            {
                "client_id": "bench-jwt",
                "auth_method": "private_key_jwt",
                "jwks": {"keys": [jwk]},
                "instantie_type": "Zorgkantoor",
                "identifiers": {"uzovi": "5151"},
                "allowed_scopes": [SCOPE],
                "allowed_audiences": ["*routes*"],
            },
        ]
    }
    (directory / "clients.yaml").write_text(json.dumps(clients))
    policies = REPO / "policies" / "iwlz"
    gateway = {
        "public_url": public,
        "server": {"host": "127.0.0.1", "port": port},
        "authserver": {"signing": {"keys_dir": "keys"}, "clients_file": "clients.yaml"},
        "routes": [
            {
                "path": "/deelnemers/uzovi/5151/graphql",
                "upstream": "http://127.0.0.1:9/graphql",
                "deelnemer": {"id_type": "UZOVI", "id": "5151", "kind": "zorgkantoor"},
                "policies": [str(policies if policies.exists() else directory / "policies")],
            }
        ],
        "policy": {"watch": False},
        "observability": {"log_level": "warning", "decision_log": False},
    }
    path = directory / "gateway.yaml"
    path.write_text(json.dumps(gateway))
    return path


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if proc.poll() is not None:
                raise SystemExit(f"gateway exited with {proc.returncode}")
            try:
                async with session.get(url + "/.well-known/jwks.json") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("gateway did not start")


async def drive(
    url: str,
    bodies: list[dict[str, str]],
    headers: dict[str, str],
    seconds: float,
    concurrency: int,
) -> tuple[int, int, float]:
    """Send token requests for *seconds*; returns (ok, failed, elapsed)."""
    ok = failed = 0
    index = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok, failed, index
            while time.perf_counter() < deadline and index < len(bodies):
                body = bodies[index]
                index += 1
                async with session.post(url + "/auth/token", data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                    else:
                        failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ok, failed, time.perf_counter() - started


def assertions(key: ec.EllipticCurvePrivateKey, token_url: str, count: int) -> list[str]:
    now = int(time.time())
    return [
        jwt.encode(
            {
                "iss": "bench-jwt",
                "sub": "bench-jwt",
                "aud": token_url,
                "iat": now,
                "exp": now + 240,
                "jti": str(uuid.uuid4()),
            },
            key,
            algorithm="ES256",
            headers={"kid": "bench"},
        )
        for _ in range(count)
    ]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = "bench"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    audience = url + "/deelnemers/uzovi/5151/graphql"
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cpus[0], cpus[-1]

    with tempfile.TemporaryDirectory() as tmp:
        config = write_deployment(Path(tmp), port, jwk)
        cmd = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)]
        proc = subprocess.Popen(
            ["taskset", "-c", str(server_cpu), *cmd],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            os.sched_setaffinity(0, {client_cpu})
            await wait_ready(url, proc)
            grant = {"grant_type": "client_credentials", "scope": SCOPE, "audience": audience}
            basic = base64.b64encode(f"bench-basic:{SECRET}".encode()).decode()
            # Warm-up (imports, first-request paths), not measured.
            await drive(url, [grant] * 200, {"Authorization": f"Basic {basic}"}, 2, 8)

            budget = int(args.seconds * 5000)
            results = {}
            ok, failed, elapsed = await drive(
                url,
                [grant] * budget,
                {"Authorization": f"Basic {basic}"},
                args.seconds,
                args.concurrency,
            )
            results["client_secret_basic"] = (ok, failed, elapsed)

            assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            bodies = [
                {**grant, "client_assertion_type": assertion_type, "client_assertion": a}
                for a in assertions(key, url + "/auth/token", budget)
            ]
            ok, failed, elapsed = await drive(url, bodies, {}, args.seconds, args.concurrency)
            results["private_key_jwt"] = (ok, failed, elapsed)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    print(
        f"server pinned to CPU {server_cpu}, load client on CPU {client_cpu}, "
        f"concurrency {args.concurrency}, ES256 signing"
    )
    for method, (ok, failed, elapsed) in results.items():
        print(
            f"{method:20s} {ok / elapsed:8.0f} tokens/s ({ok} ok, {failed} failed, {elapsed:.1f} s)"
        )
    return 0 if all(r[1] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
