# One image per service, from one file. Build context is the repository root:
#   docker build --build-arg SERVICE=intake --build-arg HTTP_PORT=8000 -t onestop-intake .
# docker-compose.yml builds all four this way; tests/unit/test_compose.py checks both files.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/onestop

RUN groupadd --system --gid 10001 onestop \
    && useradd --system --uid 10001 --gid onestop --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin onestop

# Exactly the versions and hashes of uv.lock (without the dev extra), the package itself
# installed non-editable; uv and the sources are removed afterwards, so the service runs only
# what the package ships (its migrations and the catalog are package data). SERVICE is declared
# below this layer, so the four services share it.
WORKDIR /build
COPY deploy/uv-requirements.txt deploy/
COPY pyproject.toml uv.lock ./
COPY shared/ shared/
COPY services/ services/
RUN pip install --no-cache-dir --require-hashes -r deploy/uv-requirements.txt \
    && uv sync --locked --no-editable --no-cache --python python3 \
    && pip uninstall --yes uv \
    && rm -rf /build
ENV PATH=/opt/onestop/bin:$PATH

ARG SERVICE
ARG HTTP_PORT=8000
# Fail the build, not the container, on a missing or misspelt service name.
RUN python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('services.' + sys.argv[1] + '.__main__') is None)" "${SERVICE:-none}" \
    || { echo "build with --build-arg SERVICE=intake|routing|deadline|notifier (got '${SERVICE}')" >&2; exit 1; }

WORKDIR /app
USER onestop

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
