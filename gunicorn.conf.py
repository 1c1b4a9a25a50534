"""gunicorn settings, read from the environment (gunicorn loads this file from the working directory).

Defaults come from `bench/bench.py --worker-models` (README, "Desempenho"): a request
spends almost all its time waiting on GLPI, so threads are cheap concurrency (and each
keeps its own GLPI session); one process per core runs the Python parts in parallel;
16 threads per process let one process serve 16 clients on keep-alive connections.
"""
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or "2")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or "16")
# A request waits at most a few GLPI timeouts; past this gunicorn restarts the worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or "60")
graceful_timeout = 30
keepalive = 5
accesslog = None  # the app writes one JSON line per request


def worker_exit(server, worker):
    """Kill the worker's GLPI sessions so they do not linger until PHP's garbage collection."""
    app = getattr(worker, "wsgi", None)
    client = app.extensions.get("glpi_client") if app is not None and hasattr(app, "extensions") else None
    if client is not None:
        client.close()
