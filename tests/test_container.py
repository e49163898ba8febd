"""The Dockerfile and docker-compose.yml, without a Docker daemon: the base image pinned by
digest, every file the image and the compose file name present in the repository, the
compose file within the compose specification, and each compose service's command run as
written (as real processes, container paths mapped to the files the image and the mounts
put there) until a real token gets a notification through the gateway to the example
resource server."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import unused_port

from tests.fixtures.docs import shell_blocks

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
LISTENING = re.compile(r"nid-gateway listening on http://[^:/]+:(\d+) ")

# The compose specification's names used here (https://github.com/compose-spec/compose-spec,
# schema/compose-spec.json): top-level keys, service keys, depends_on conditions.
COMPOSE_TOP = {"name", "services", "volumes", "networks", "configs", "secrets", "include"}
COMPOSE_SERVICE = {
    "build",
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "volumes",
    "ports",
    "expose",
    "depends_on",
    "healthcheck",
    "restart",
    "user",
    "working_dir",
    "read_only",
    "tmpfs",
    "stop_grace_period",
    "stop_signal",
    "networks",
    "labels",
    "init",
    "profiles",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (keyword, arguments), continuation lines joined."""
    lines = [
        line
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (
            line.strip().partition(" ") for line in joined.splitlines() if line.strip()
        )
    ]


def image_files() -> dict[str, Path]:
    """What the runtime stage's ``COPY`` lines put in the image: image path -> source."""
    stages = [i for i, (word, _) in enumerate(instructions()) if word == "FROM"]
    copies = [rest.split() for word, rest in instructions()[stages[-1] :] if word == "COPY"]
    return {words[1]: REPO / words[0] for words in copies if not words[0].startswith("--from")}


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in the environment: the default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", lambda m: m[1], value)


def test_the_base_image_is_pinned_by_digest() -> None:
    args = dict(rest.split("=", 1) for word, rest in instructions() if word == "ARG")
    images = [rest.split()[0] for word, rest in instructions() if word == "FROM"]
    assert images == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", args["PYTHON_IMAGE"])


def test_every_file_the_dockerfile_copies_is_in_the_repository() -> None:
    copies = [rest.split() for word, rest in instructions() if word == "COPY"]
    for words in copies:
        if not words[0].startswith("--from"):  # from another stage, not the repository
            for source in words[:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies {source}: not in the repo"
    assert image_files() == {
        "/usr/share/nid-gateway/policies": REPO / "policies",
        "/usr/share/nid-gateway/schemas/netwerkpunt.graphql": REPO
        / "gateway/graphql/netwerkpunt.graphql",
    }


def test_cmd_and_healthcheck_run_what_the_image_holds() -> None:
    found = dict(instructions())
    cmd = json.loads(found["CMD"])
    assert cmd[0] == "nid-gateway"  # the console script of pyproject.toml, in the venv
    assert 'nid-gateway = "gateway.cli:main"' in (REPO / "pyproject.toml").read_text()
    healthcheck = json.loads(found["HEALTHCHECK"].partition(" CMD ")[2])
    assert healthcheck == ["python", "-m", "gateway.healthcheck"]
    assert (REPO / "gateway/healthcheck.py").is_file()  # COPY gateway, installed with it


def test_the_compose_file_keeps_to_the_compose_specification() -> None:
    data = compose()
    assert set(data) <= COMPOSE_TOP
    services, volumes = data["services"], data["volumes"]
    exposed = {int(p) for word, rest in instructions() if word == "EXPOSE" for p in rest.split()}
    for name, service in services.items():
        assert set(service) <= COMPOSE_SERVICE, name
        assert isinstance(service["command"], list)
        assert all(isinstance(word, str) for word in service["command"])
        assert service["image"] == "nid-gateway"
        for target, dependency in service.get("depends_on", {}).items():
            assert target in services and dependency["condition"] in CONDITIONS, name
        for mount in service.get("volumes", []):
            source, target, *mode = mount.split(":")
            assert target.startswith("/") and mode in ([], ["ro"]), mount
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts {source}: missing"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
        for port in service.get("ports", []):
            assert int(port.split(":")[1]) in exposed, port
        assert all(isinstance(v, str) for v in service.get("environment", {}).values())
    assert (COMPOSE.parent / services["keys"]["build"] / "Dockerfile").is_file()


class Container:
    """One service's view of the file system, as paths outside a container: the image's
    files (the Dockerfile's COPY) and the service's mounts (volumes in *volumes*)."""

    def __init__(self, service: dict[str, Any], volumes: Path) -> None:
        self.paths = {image: str(source) for image, source in image_files().items()}
        for mount in service.get("volumes", []):
            source, target, *_ = mount.split(":")
            path = COMPOSE.parent / source if source.startswith(".") else volumes / source
            self.paths[target] = str(path)

    def translate(self, text: str) -> str:
        for target in sorted(self.paths, key=len, reverse=True):
            text = text.replace(target, self.paths[target])
        return text


def run_command(service: dict[str, Any], container: Container) -> list[str]:
    return [container.translate(word) for word in service["command"]]


def image_env(service: dict[str, Any], **changes: str) -> dict[str, str]:
    """The process environment: the image's PATH (the venv first) and the service's own."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.update({k: interpolate(v) for k, v in service.get("environment", {}).items()})
    return {**env, **changes}


def wait_for_port(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """examples/compose/ as the gateway sees it at /etc/nid-gateway: its container paths
    mapped to the image's files and the volumes under *tmp_path*."""
    services = compose()["services"]
    gateway = Container(services["gateway"], tmp_path)
    etc = tmp_path / "etc"
    shutil.copytree(gateway.paths["/etc/nid-gateway"], etc)
    config = etc / "gateway.yaml"
    config.write_text(gateway.translate(config.read_text(encoding="utf-8")), encoding="utf-8")
    return etc


def test_the_compose_services_run_as_written_and_pass_a_notification(
    tmp_path: Path, deployment: Path
) -> None:
    services = compose()["services"]
    keys = services["keys"]
    for _ in range(2):  # a second start keeps the key
        subprocess.run(
            run_command(keys, Container(keys, tmp_path)),
            env=image_env(keys),
            cwd=tmp_path,
            check=True,
            timeout=60,
            capture_output=True,
        )
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 1

    rs = services["resource-server"]
    rs_port = unused_port()
    command = run_command(rs, Container(rs, tmp_path))
    command[command.index("-P") + 1] = str(rs_port)
    resource_server = subprocess.Popen(
        command, env=image_env(rs), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    gw = services["gateway"]
    container = Container(gw, tmp_path)
    container.paths["/etc/nid-gateway"] = str(deployment)
    upstream = interpolate(gw["environment"]["RESOURCE_SERVER_URL"]).replace(
        "resource-server:9000", f"127.0.0.1:{rs_port}"
    )
    gateway = subprocess.Popen(
        [*run_command(gw, container), "--port", "0"],  # the published port may be taken
        env=image_env(gw, RESOURCE_SERVER_URL=upstream),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(rs_port, resource_server)
        assert gateway.stderr is not None
        port = next(m[1] for line in gateway.stderr if (m := LISTENING.search(line)))
        (curls,) = [b for b in shell_blocks(REPO / "docs/operations.md") if "ciz-compose" in b]
        answer = subprocess.run(
            ["bash", "-ec", curls.replace("localhost:8080", f"localhost:{port}")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    finally:
        for proc in (gateway, resource_server):
            proc.terminate()
        received = resource_server.communicate(timeout=30)[0]
        gateway.communicate(timeout=30)
    notification = json.loads(answer)["data"]["zendNotificatie"]["notificatieID"]
    assert notification in received and "Zorgkantoor 5151" in received
