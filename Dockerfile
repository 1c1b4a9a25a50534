# GLPI ticket gateway: gunicorn + Flask, configured only by environment variables.
FROM python:3.12.8-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=5000 \
    DATA_DIR=/app/data

# The runtime user owns only its data: the code stays root's, so a compromised worker cannot rewrite it.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent gateway
WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install -r requirements.txt

# What ships, named one by one (tests, the GLPI sandbox and the tooling stay out).
COPY app.py config.py glpi_client.py gunicorn.conf.py ./
COPY glpi_gateway/ ./glpi_gateway/
RUN mkdir -p /app/data && chown gateway:gateway /app/data
USER gateway
# The queue and the idempotency keys (SQLite): mount a volume so they survive the container.
VOLUME ["/app/data"]

EXPOSE 5000
# The image has no curl: the health check uses Python's standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % os.environ.get('PORT', '5000'), timeout=4)"]

# gunicorn.conf.py reads PORT, WEB_CONCURRENCY, GUNICORN_THREADS, GUNICORN_WORKER_CLASS, GUNICORN_WORKER_CONNECTIONS and GUNICORN_TIMEOUT.
CMD ["gunicorn", "app:create_app()"]
