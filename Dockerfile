# order-service image: two stages with uv; the runtime stage has the virtualenv and nothing else.
# BASE_IMAGE is any Debian-like image with python3 (>= 3.11) and venv: the official slim image by
# default, or the locally built localhost/python-base where no registry is reachable.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# pip and uv verify PyPI against the image's CA store (pip's own bundle would ignore it) or,
# behind a TLS-intercepting proxy, against its bundle: --secret id=ca_bundle,src=/path/to/bundle.
RUN printf '%s\n' '#!/bin/sh' 'ca=/run/secrets/ca_bundle' \
        '[ -s "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt' \
        '[ -s "$ca" ] && export PIP_CERT="$ca" SSL_CERT_FILE="$ca"' 'exec "$@"' \
        > /usr/local/bin/with-ca \
 && chmod 755 /usr/local/bin/with-ca
RUN --mount=type=secret,id=ca_bundle \
    --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv /opt/uv && with-ca /opt/uv/bin/pip install uv==0.13.9
# Dependencies first: this layer is reused until uv.lock changes.
RUN --mount=type=secret,id=ca_bundle \
    --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    with-ca /opt/uv/bin/uv sync --locked --no-dev --no-install-project
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
RUN --mount=type=secret,id=ca_bundle \
    --mount=type=cache,target=/root/.cache/uv \
    with-ca /opt/uv/bin/uv sync --locked --no-dev --no-editable

FROM ${BASE_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /app app
COPY --from=builder --chown=app:app /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ORDER_SERVICE_HTTP__HOST=0.0.0.0 \
    ORDER_SERVICE_HTTP__PORT=8080
USER app
WORKDIR /app
# Import smoke test: the app builds from its default settings without any network I/O.
RUN python -c "import order_service.app, uvloop, faststream" && faststream --version
EXPOSE 8080
# FastStream (through uvicorn) drains the in-flight batch and commits on SIGTERM.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('ORDER_SERVICE_HTTP__PORT', '8080'), timeout=2)"
CMD ["faststream", "run", "order_service.app:app"]
