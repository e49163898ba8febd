# nid-gateway container image.
#   docker build -t nid-gateway .
# then run it as docs/operations.md "Running in a container" shows (deployment folder made
# from config/example/, key ownership, port, environment).
# The deployment (gateway.yaml, clients.yaml, keys/, tls/) is mounted at /etc/nid-gateway;
# the image holds no configuration, keys or certificates. It ships the iWlz policies at
# /usr/share/nid-gateway/policies and the network schema at
# /usr/share/nid-gateway/schemas/netwerkpunt.graphql for gateway.yaml to name
# (docs/operations.md, "Running in a container"; config/example/gateway.yaml does).
ARG PYTHON_IMAGE=python:3.11-slim

# -- build: the project and its dependencies in a virtual environment ------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/nid-gateway \
 && /opt/nid-gateway/bin/pip install --no-cache-dir --upgrade pip
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN /opt/nid-gateway/bin/pip install --no-cache-dir . \
 && /opt/nid-gateway/bin/nid-gateway --help > /dev/null

# -- runtime: the virtual environment only (no compiler, no pip cache), a non-root user --------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/nid-gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NID_GATEWAY_HEALTH_URL=http://127.0.0.1:8080/healthz
RUN groupadd --system --gid 10001 nid \
 && useradd --system --uid 10001 --gid nid --home-dir /nonexistent --shell /usr/sbin/nologin nid \
 && mkdir -p /etc/nid-gateway /var/log/nid-gateway \
 && chown nid:nid /var/log/nid-gateway
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
