# nid-gateway container image.
#   docker build -t nid-gateway .
# then run it as docs/operations.md "Running in a container" shows (deployment folder made
# from config/example/, key ownership, port, environment).
# The deployment (gateway.yaml, clients.yaml, keys/, tls/) is mounted at /etc/nid-gateway;
# the image holds no configuration, keys or certificates. It ships the iWlz policies at
# /usr/share/nid-gateway/policies and the network schema at
# /usr/share/nid-gateway/schemas/netwerkpunt.graphql for gateway.yaml to name
# (docs/operations.md, "Running in a container"; config/example/gateway.yaml does).
# The base image, pinned by digest (the image index of python:3.11-slim) so every
# build starts from the same bytes. To move to a newer python:3.11-slim, print its digest
#   docker buildx imagetools inspect --format '{{.Manifest.Digest}}' python:3.11-slim
# (or, without Docker: TOKEN=$(curl -s 'https://auth.docker.io/token?service=registry.docker.io&scope=repository:library/python:pull' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])');
#  curl -sI -H "Authorization: Bearer $TOKEN" -H 'Accept: application/vnd.oci.image.index.v1+json' https://registry-1.docker.io/v2/library/python/manifests/3.11-slim | grep -i docker-content-digest)
# and replace the sha256 below; tests/test_container.py checks that a digest is there.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# -- build: the project and its dependencies in a virtual environment ------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# Every version comes from the lock (`make lock`): PIP_CONSTRAINT also reaches the isolated
# build of the project (setuptools, wheel). The base image's pip is used as is (pinned above).
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt ./requirements/constraints.txt
COPY gateway ./gateway
RUN python -m venv /opt/nid-gateway \
 && PIP_CONSTRAINT=/src/requirements/constraints.txt \
    /opt/nid-gateway/bin/pip install --no-cache-dir . \
 && /opt/nid-gateway/bin/nid-gateway --help > /dev/null

# -- runtime: the virtual environment only (no compiler, no pip cache), a non-root user --------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/nid-gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NID_GATEWAY_HEALTH_URL=http://127.0.0.1:8080/healthz
RUN groupadd --system --gid 10001 nid \
 && useradd --system --uid 10001 --gid nid --home-dir /nonexistent --shell /usr/sbin/nologin nid \
 && mkdir -p /etc/nid-gateway /var/log/nid-gateway /var/lib/nid-gateway/keys \
 && chown nid:nid /var/log/nid-gateway /var/lib/nid-gateway/keys
COPY --from=build /opt/nid-gateway /opt/nid-gateway
# The iWlz policies and the network schema (the schema is also package data of gateway.graphql;
# copied from there: config/schemas/netwerkpunt.graphql is a symlink to it).
COPY policies /usr/share/nid-gateway/policies
COPY gateway/graphql/netwerkpunt.graphql /usr/share/nid-gateway/schemas/netwerkpunt.graphql

USER nid:nid
WORKDIR /etc/nid-gateway
EXPOSE 8080 8443
# Liveness: GET /healthz on the loopback. Set NID_GATEWAY_HEALTH_URL to the configured
# scheme and port (https: the probe skips certificate checks, it sends no credentials).
# `serve --workers N` creates its metrics directory under TMPDIR (/tmp): with a read-only
# root file system, mount a tmpfs there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-m", "gateway.healthcheck"]
CMD ["nid-gateway", "serve", "--config", "/etc/nid-gateway/gateway.yaml"]
