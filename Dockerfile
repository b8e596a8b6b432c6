# ccrouter as a container image. Build: `docker build -t ccrouter .` (README: Deploying).
#
# Two stages: the builder makes ccrouter's wheel and collects every dependency's wheel; the final
# stage installs them from that folder alone, so it needs no compiler, no network and no build tool,
# and keeps none of them. It runs as an unprivileged user, `ccrouter serve` being its entry point.
#
# Configuration: /etc/ccrouter/config.yaml (CCROUTER_CONFIG), whose default reads everything from the
# environment (deploy/docker/config.yaml: CCROUTER_CLIENT_KEY, CCROUTER_ADMIN_TOKEN, ANTHROPIC_API_KEY);
# mount your own file over it for more. The gateway binds 0.0.0.0 only with client auth configured
# (server.api_keys, server.jwt or server.require_auth: true): without it, it refuses to start.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim-bookworm
ARG UID=10001
RUN groupadd --system --gid "${UID}" ccrouter \
    && useradd --system --uid "${UID}" --gid ccrouter --home-dir /var/lib/ccrouter --create-home \
        --shell /usr/sbin/nologin ccrouter
# The wheels are mounted for this step only: no layer keeps them.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels /wheels/ccrouter-*.whl
# The config folder is the gateway's (it writes its statusline state file there at start); the
# sticky bit keeps it from deleting or replacing the root-owned config file.
COPY deploy/docker/config.yaml /etc/ccrouter/config.yaml
RUN chown ccrouter:ccrouter /etc/ccrouter && chmod 1755 /etc/ccrouter
ENV CCROUTER_CONFIG=/etc/ccrouter/config.yaml \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric, so that a runtime can tell it is not root (Kubernetes' runAsNonRoot).
USER ${UID}:${UID}
WORKDIR /var/lib/ccrouter
VOLUME ["/var/lib/ccrouter"]
EXPOSE 3456
# On SIGTERM the gateway drains: /health/ready fails at once, new requests are served for
# server.drain_grace_s, then answered 529 (clients retry elsewhere), streams get server.drain_s to
# finish. Give it that long before the runtime kills it (docker stop --time, compose stop_grace_period).
STOPSIGNAL SIGTERM
# Ready: configuration loaded, ledger (and Redis, when configured) answering, not draining.
# CCROUTER_HEALTH_URL: when server.port is not 3456.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('CCROUTER_HEALTH_URL', 'http://127.0.0.1:3456/health/ready'), timeout=4)"]
ENTRYPOINT ["ccrouter", "serve"]
