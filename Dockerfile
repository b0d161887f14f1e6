# One image per service, from one file. Build context is the repository root:
#   docker build --build-arg SERVICE=intake --build-arg HTTP_PORT=8000 -t onestop-intake .
# docker-compose.yml builds all four this way, deploy/k8s runs them; tests/unit/test_compose.py
# checks this file.
#
# Two stages: `builder` installs exactly uv.lock into a virtual environment with uv;
# `runtime` is the same base image with only that environment (no uv, no pip cache, no sources).
# The base is pinned to an exact patch version, so a rebuild gets the same Python (a digest
# would pin it further; pass one with --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:…).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/onestop

WORKDIR /build
# uv itself, pinned with hashes.
COPY deploy/uv-requirements.txt deploy/
RUN pip install --no-cache-dir --require-hashes -r deploy/uv-requirements.txt
# The dependencies first (their own layer, reused while only the sources change): exactly the
# versions and hashes of uv.lock, without the dev extra; --locked fails on a stale lock.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-install-project --no-editable --no-cache --python python3
# Then the package itself, non-editable: its migrations and the catalog are package data.
COPY shared/ shared/
COPY services/ services/
RUN uv sync --locked --no-editable --no-cache --python python3

FROM ${PYTHON_IMAGE} AS runtime

# Bytecode is compiled in the builder: the root filesystem may be read-only (deploy/k8s).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/onestop/bin:$PATH

# The uid deploy/k8s runs as (runAsUser 10001).
RUN groupadd --system --gid 10001 onestop \
    && useradd --system --uid 10001 --gid onestop --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin onestop

COPY --from=builder /opt/onestop /opt/onestop

# Declared after the environment, so the four services share every layer above.
ARG SERVICE
ARG HTTP_PORT=8000
# Fail the build, not the container, on a missing or misspelt service name.
RUN python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('services.' + sys.argv[1] + '.__main__') is None)" "${SERVICE:-none}" \
    || { echo "build with --build-arg SERVICE=intake|routing|deadline|notifier (got '${SERVICE}')" >&2; exit 1; }

WORKDIR /app
USER 10001:10001

ENV ONESTOP_SERVICE=${SERVICE} \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=${HTTP_PORT}
EXPOSE ${HTTP_PORT}

# Liveness only (/healthz answers once the service has reached PostgreSQL and migrated);
# /readyz also reports Kafka. The port follows HTTP_PORT if it is overridden.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['HTTP_PORT'] + '/healthz', timeout=3)"]

# exec: sh gives way to python, so the service itself gets docker stop's SIGTERM.
CMD ["sh", "-c", "exec python -m \"services.${ONESTOP_SERVICE}\""]
