# GLPI ticket gateway: gunicorn + Flask, configured only by environment variables.
#
# Debian's own Python (bookworm: 3.11) in a virtual environment. The base is a build argument only so
# that a machine without access to an image registry (CI) can build on the same Debian made locally
# (scripts/docker-base.sh); production builds use the default. See docs/operacao.md, "A imagem e o
# gunicorn".
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=5000 \
    DATA_DIR=/app/data

# Python from Debian (security updates come with the distribution's), ca-certificates for TLS: pip's
# downloads, and a GLPI behind an internal CA (REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt).
# The runtime user owns only its data: the code stays root's, so a compromised worker cannot rewrite it.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin gateway
WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes. Exactly the locked
# versions (every file checked against its hash); pip itself leaves the venv afterwards.
COPY requirements.txt .
RUN python3 -m venv "$VIRTUAL_ENV" \
    && pip install --require-hashes --no-deps -r requirements.txt \
    && pip uninstall -y -q pip setuptools

# What ships, named one by one (tests, the GLPI sandbox and the tooling stay out), compiled now since
# the code is read-only at run time.
COPY app.py config.py glpi_client.py gunicorn.conf.py ./
COPY glpi_gateway/ ./glpi_gateway/
RUN python -m compileall -q app.py config.py glpi_client.py glpi_gateway \
    && mkdir -p /app/data && chown gateway:gateway /app/data
USER gateway
# The queue and the idempotency keys (SQLite): mount a volume so they survive the container.
VOLUME ["/app/data"]

EXPOSE 5000
# The image has no curl: the health check uses Python's standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % os.environ.get('PORT', '5000'), timeout=4)"]

# gunicorn.conf.py reads PORT, WEB_CONCURRENCY, GUNICORN_THREADS, GUNICORN_WORKER_CLASS, GUNICORN_WORKER_CONNECTIONS and GUNICORN_TIMEOUT.
CMD ["gunicorn", "app:create_app()"]
