# nid-gateway container image.
#   docker build -t nid-gateway .
#   docker run -p 8080:8080 -v "$PWD/deploy:/etc/nid-gateway:ro" nid-gateway
# The configuration (gateway.yaml, clients.yaml, keys/, policies/) is mounted at
# /etc/nid-gateway; the image holds no configuration or keys.

# -- build: a wheel of the project and of its dependencies ----------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m pip install --no-cache-dir --upgrade pip wheel
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

# -- runtime: the wheels only, a non-root user ------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NID_GATEWAY_HEALTH_URL=http://127.0.0.1:8080/healthz
RUN groupadd --system --gid 10001 nid \
 && useradd --system --uid 10001 --gid nid --home-dir /nonexistent --shell /usr/sbin/nologin nid \
 && mkdir -p /etc/nid-gateway /var/log/nid-gateway \
 && chown nid:nid /var/log/nid-gateway
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index --find-links=/wheels nid-gateway \
 && rm -rf /wheels
# The network schema, for routes that validate requests against it.
COPY config/schemas /usr/share/nid-gateway/schemas

USER nid:nid
WORKDIR /etc/nid-gateway
EXPOSE 8080
# Liveness over plain HTTP on the default port; set NID_GATEWAY_HEALTH_URL when the
# gateway listens elsewhere. (No curl in the slim image: Python does the request.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(os.environ['NID_GATEWAY_HEALTH_URL'], timeout=4).status == 200 else 1)"]
CMD ["nid-gateway", "serve", "--config", "/etc/nid-gateway/gateway.yaml"]
