# syntax=docker/dockerfile:1
# fin_agent's production image: `fin-agent run` (default) or `fin-agent dashboard`.
#
# build:   uv installs exactly what uv.lock pins (`uv sync --frozen`, as `make install` does, less
#          the dev group) into /opt/venv, the project as a plain wheel.
# runtime: the same slim Python, the venv, config.yaml and the dashboard; no uv, no compiler, no
#          dev tools, no secrets (those are files under /run/secrets at run time), a non-root user.
# The same Python minor as CI (python3 of the Makefile), so the image runs the wheels CI tested.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build

# The uv that wrote uv.lock, pinned.
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock changes, not on every code edit.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-project --python /usr/local/bin/python3

COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --python /usr/local/bin/python3


FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="fin-agent" \
      org.opencontainers.image.description="Hexagonal, event-driven intraday trading agent on Redis Streams" \
      org.opencontainers.image.licenses="MIT"

# A fixed, unprivileged uid/gid (10001) so volumes and Kubernetes' runAsNonRoot can rely on it.
RUN groupadd --system --gid 10001 fin_agent \
    && useradd --system --no-log-init --uid 10001 --gid fin_agent \
        --home-dir /home/fin_agent --create-home --shell /usr/sbin/nologin fin_agent \
    && install -d -o fin_agent -g fin_agent -m 0750 /data

COPY --from=build /opt/venv /opt/venv

# config.yaml (compose mounts the operator's copy over it) and the Streamlit app, which
# `fin-agent dashboard` finds as ./dashboard/app.py. Both stay root-owned: read-only to the agent.
WORKDIR /app
COPY config.yaml ./
COPY dashboard ./dashboard

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FIN_AGENT_DATA_DIR=/data

USER 10001:10001

# 8080: /healthz, /readyz, /metrics and the read API; 8501: the dashboard.
EXPOSE 8080 8501

# Liveness of `fin-agent run` through the venv's Python: no curl in the image. The dashboard's
# container overrides it (docker-compose.yml) with Streamlit's own health endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; port = os.environ.get('FIN_AGENT_HTTP__PORT') or '8080'; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

ENTRYPOINT ["fin-agent"]
CMD ["run"]
