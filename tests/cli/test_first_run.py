"""First run as the README and docs describe it, each command run as a real process:
``make run PORT=N``, a busy port, ``--port 0`` (demo and serve), ``demo --log-format json``,
output piped into a reader that stops early, ``policy explain --token``, and the deelnemer's
minimal configuration serving a real token from a real JWKS to a real resource server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from gateway.authserver.signing_keys import generate_key
from gateway.examples.resource_server import create_resource_server_app
from tests.fixtures.demo import read_until_printed, seed_003_example
from tests.fixtures.docs import readme_explain_command, shell_blocks

REPO = Path(__file__).resolve().parents[2]
NID = [sys.executable, "-m", "gateway.cli"]
DEMO_LINE = re.compile(r"^nid-gateway demo on http://127\.0\.0\.1:(\d+) ", re.M)
LISTENING = re.compile(r"nid-gateway listening on http://127\.0\.0\.1:(\d+) ")
CIZ_SCOPE = "organisaties/zorgkantoor/notificaties/notificatie:create"
ROUTE = "/deelnemers/uzovi/5151/graphql"


def stop(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C for *proc* and everything it started (make and its demo), then reap it."""
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process (this one) is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_make_run_port_starts_the_demo_on_that_port() -> None:
    port = unused_port()
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        text = read_until_printed(proc, "# 3.")
    finally:
        stop(proc)
    assert DEMO_LINE.search(text)[1] == str(port)  # type: ignore[index]
    assert f"-d audience=http://127.0.0.1:{port}{ROUTE}" in text


@pytest.mark.parametrize(
    ("command", "fix"),
    [
        (["demo"], "pass --port N (or make run PORT=N)"),
        (["serve", "--config", "config/demo/gateway.yaml"], "pass --port N (or set server.port)"),
    ],
)
def test_a_busy_port_is_one_line_naming_the_fix(
    busy_port: int, command: list[str], fix: str
) -> None:
    result = subprocess.run(
        [*NID, *command, "--port", str(busy_port)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: port {busy_port} is in use: {fix}\n"


def test_demo_on_port_0_prints_and_uses_the_port_it_bound() -> None:
    proc = subprocess.Popen(
        [*NID, "demo", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        text = read_until_printed(proc, "# 3.")
        port = DEMO_LINE.search(text)[1]  # type: ignore[index]
        token, allowed, _refused = text[text.index("TOKEN=$(") :].strip().split("\n\n")
        answer = subprocess.run(
            ["bash", "-c", f"{token}\n{allowed}\n"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    finally:
        stop(proc)
    assert port != "0"
    assert f"http://127.0.0.1:{port}/auth/token" in token
    assert json.loads(answer)["data"]["zendNotificatie"]["notificatieID"]


def test_serve_on_port_0_announces_the_port_it_bound_and_issues_for_it() -> None:
    proc = subprocess.Popen(
        [*NID, "serve", "--config", "config/demo/gateway.yaml", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        port = next(m[1] for line in proc.stderr if (m := LISTENING.search(line)))
        base = f"http://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", int(port)), timeout=5):
            pass
        metadata = subprocess.run(
            ["curl", "-sf", f"{base}/.well-known/oauth-authorization-server"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    finally:
        stop(proc)
    assert port != "0"
    assert json.loads(metadata)["issuer"] == base


def test_demo_log_format_json_logs_json_lines() -> None:
    proc = subprocess.Popen(
        [*NID, "demo", "--port", "0", "--log-format", "json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        text = read_until_printed(proc, "# 3.")
    finally:
        stop(proc)
    logs = text[: DEMO_LINE.search(text).start()].splitlines()  # type: ignore[union-attr]
    events = [json.loads(line)["event"] for line in logs]
    assert "observability_ready" in events


def closed_pipe_commands(tmp_path: Path) -> dict[str, list[str]]:
    audience = f"http://127.0.0.1:8080{ROUTE}"
    return {
        "help": ["--help"],
        "policy check": ["policy", "check", "policies/iwlz"],
        "policy test": ["policy", "test", "-v", "policies/iwlz"],
        "policy explain": readme_explain_command()[1:],
        "token issue": [
            "token",
            "issue",
            "--config",
            "config/demo/gateway.yaml",
            "--client",
            "ciz",
            "--scope",
            CIZ_SCOPE,
            "--audience",
            audience,
        ],
        "keys generate": ["keys", "generate", "--out", str(tmp_path / "keys")],
        "keys hash-secret": ["keys", "hash-secret"],
        "demo": ["demo", "--port", "0"],
    }


@pytest.mark.parametrize(
    "name",
    [
        "help",
        "policy check",
        "policy test",
        "policy explain",
        "token issue",
        "keys generate",
        "keys hash-secret",
        "demo",
    ],
)
def test_output_into_a_reader_that_stopped_ends_quietly(tmp_path: Path, name: str) -> None:
    """``nid-gateway ... | head``: the reader is gone before the command writes (the
    deterministic form of head exiting early)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [*NID, *closed_pipe_commands(tmp_path)[name]],
            cwd=REPO,
            stdout=write_end,
            stderr=subprocess.PIPE,
            input=b"a-secret\n",
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    # As if SIGPIPE had ended it; argparse itself ignores a failed write of --help.
    assert result.returncode == (0 if name == "help" else 141)


def test_explain_decodes_a_captured_token_without_verifying_it(tmp_path: Path) -> None:
    audience = f"http://127.0.0.1:8080{ROUTE}"
    token = subprocess.run(
        [
            *NID,
            "token",
            "issue",
            "--config",
            "config/demo/gateway.yaml",
            "--client",
            "ciz",
            "--scope",
            CIZ_SCOPE,
            "--audience",
            audience,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    command = readme_explain_command()[1:]
    claims_at = command.index("--claims")
    command[claims_at : claims_at + 2] = ["--token", token]
    result = subprocess.run(
        [*NID, *command], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("decision:    ALLOW 200\n")
    assert result.stderr == (
        "note: --token decoded without verifying its signature, issuer or expiry\n"
    )
    command[claims_at + 1] = "not-a-jwt"
    result = subprocess.run(
        [*NID, *command], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("error: --token is not a JWT: ")


@pytest.fixture
async def nid_issuer(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A stand-in for the network's nID authorization server: its JWKS over HTTP; the issuer
    URL and the keys directory holding its signing key."""
    keys = tmp_path / "nid-keys"
    generate_key(keys, "ES256")
    app = web.Application()
    jwks = json.loads((keys / "jwks.json").read_text())

    async def serve_jwks(_request: web.Request) -> web.Response:
        return web.json_response(jwks)

    app.router.add_get("/jwks.json", serve_jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), keys
    await server.close()


@pytest.fixture
async def resource_server() -> AsyncIterator[tuple[str, web.Application]]:
    app = create_resource_server_app("Zorgkantoor 5151")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/graphql")), app
    await server.close()


def deelnemer_config(tmp_path: Path, issuer: str, upstream: str) -> Path:
    """config/example/deelnemer-minimal.yaml with only its marked values edited, in a copy
    of the source tree's layout (its policies are named relative to it)."""
    folder = tmp_path / "config" / "example"
    folder.mkdir(parents=True)
    (tmp_path / "policies").symlink_to(REPO / "policies")
    text = (REPO / "config/example/deelnemer-minimal.yaml").read_text()
    edits = {
        "https://nid.vecozo.example.nl/.well-known/jwks.json": f"{issuer}/jwks.json",
        "https://nid.vecozo.example.nl": issuer,
        "http://127.0.0.1:9000/graphql": upstream,
    }
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / "deelnemer-minimal.yaml"
    path.write_text(text)
    return path


async def test_the_deelnemers_minimal_config_serves_an_nid_token(
    tmp_path: Path, nid_issuer: tuple[str, Path], resource_server: tuple[str, web.Application]
) -> None:
    issuer, keys = nid_issuer
    upstream, _app = resource_server
    config = deelnemer_config(tmp_path, issuer, upstream)
    proc = await asyncio.create_subprocess_exec(
        *NID,
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        port = None
        while port is None:
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, "serve ended before listening"
            port = (m := LISTENING.search(line.decode())) and m[1]
        (pem,) = keys.glob("*.pem")
        now = int(time.time())
        claims = json.loads((REPO / "examples/explain/claims.json").read_text())
        claims |= {
            "iss": issuer,
            "aud": f"http://127.0.0.1:{port}{ROUTE}",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        token = jwt.encode(claims, pem.read_bytes(), "ES256", headers={"kid": pem.stem})
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}{ROUTE}",
                json=seed_003_example(),
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            status, body = resp.status, await resp.json()
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    assert status == 200, body
    assert body["data"]["zendNotificatie"]["notificatieID"]


def test_the_minimal_config_is_documented_with_its_command() -> None:
    command = ".venv/bin/nid-gateway serve --config config/example/deelnemer-minimal.yaml"
    assert command in (REPO / "docs/configuration.md").read_text()
    assert command in (REPO / "config/example/deelnemer-minimal.yaml").read_text()


def test_the_documented_docker_run_fits_the_image_and_the_example() -> None:
    """No Docker daemon here: the documented ``docker run`` is checked against the Dockerfile
    (config path of its CMD) and the shipped example (port, scheme, environment)."""
    (run,) = [
        line
        for block in shell_blocks(REPO / "docs/operations.md")
        for line in block.splitlines()
        if line.startswith("docker run -d")
    ]
    words = run.split()
    cmd_config = re.search(r'"--config", "(/[^"]+)"', (REPO / "Dockerfile").read_text())
    assert cmd_config is not None
    mounts = [words[i + 1].strip('"') for i, w in enumerate(words) if w == "-v"]
    assert f"$PWD/deploy:{Path(cmd_config[1]).parent}:ro" in mounts
    example = REPO / "config/example"
    port = re.search(r"^  port: (\d+)$", (example / "gateway.yaml").read_text(), re.M)
    assert port is not None
    assert f"{port[1]}:{port[1]}" in words
    env = {words[i + 1].split("=")[0] for i, w in enumerate(words) if w == "-e"}
    values = [
        line
        for f in ("gateway.yaml", "clients.yaml")
        for line in (example / f).read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    named = {name for line in values for name in re.findall(r"\$\{(\w+)\}", line)}
    assert named <= env
    assert f"NID_GATEWAY_HEALTH_URL=https://127.0.0.1:{port[1]}/healthz" in run
    # The README points at these steps instead of a docker run that cannot start.
    assert "docs/operations.md#running-in-a-container" in (REPO / "README.md").read_text()


def test_keys_made_as_documented_are_readable_by_the_images_user() -> None:
    """The documented deployment steps, then ``keys generate`` (which reads every key) as
    uid 10001, the image's ``nid``: before the documented chown it cannot read the keys."""
    (steps,) = [b for b in shell_blocks(REPO / "docs/operations.md") if "mkdir deploy" in b]
    base = Path(tempfile.mkdtemp(dir=REPO / ".venv"))  # a folder uid 10001 may traverse
    try:
        with traversable_by_others(base):
            run_documented_key_steps(steps, base)
    finally:
        shutil.rmtree(base)


@contextmanager
def traversable_by_others(path: Path) -> Iterator[None]:
    """Let other users traverse to *path* (``o+x`` on each folder above it that lacks it, as
    on a deployment host; a CI checkout may sit in a private temp folder), restored after."""
    changed = []
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(folder, mode | stat.S_IXOTH)
            changed.append((folder, mode))
    try:
        yield
    finally:
        for folder, mode in changed:
            os.chmod(folder, mode)


def run_documented_key_steps(steps: str, base: Path) -> None:
    os.chmod(base, 0o755)
    (base / "config").symlink_to(REPO / "config")  # the steps run in the source tree
    chown = next(line for line in steps.splitlines() if "chown" in line)
    setup = [
        line.replace(".venv/bin/", f"{REPO}/.venv/bin/")
        for line in steps.splitlines()
        if "chown" not in line
    ]
    subprocess.run(
        ["bash", "-ec", "\n".join(setup)], cwd=base, check=True, timeout=60, capture_output=True
    )
    (rotation,) = [b for b in shell_blocks(REPO / "docs/operations.md") if "setpriv" in b]
    rotate = rotation.strip().removeprefix("sudo ").replace(".venv/", f"{REPO}/.venv/")
    before = subprocess.run(
        ["bash", "-ec", rotate], cwd=base, capture_output=True, text=True, timeout=60
    )
    # Refused for the keys, not for the path to the program.
    assert before.returncode != 0 and "deploy/keys" in before.stderr, before.stderr
    subprocess.run(["bash", "-ec", chown.removeprefix("sudo ")], cwd=base, check=True, timeout=60)
    after = subprocess.run(
        ["bash", "-ec", rotate], cwd=base, capture_output=True, text=True, timeout=60
    )
    assert after.returncode == 0, after.stderr
    assert len(list((base / "deploy/keys").glob("*.pem"))) == 2


def test_a_busy_admin_port_names_its_own_setting(tmp_path: Path, busy_port: int) -> None:
    config = deelnemer_config(tmp_path, "https://nid.example.nl", "http://127.0.0.1:9/graphql")
    with config.open("a") as fh:
        fh.write(f"server:\n  admin: {{port: {busy_port}}}\n")
    result = subprocess.run(
        [*NID, "serve", "--config", str(config), "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.endswith(
        f"error: port {busy_port} is in use: change server.admin.port\n"
    ), result.stderr
    assert "Traceback" not in result.stderr
