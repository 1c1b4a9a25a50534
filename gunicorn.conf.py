"""gunicorn settings, read from the environment (gunicorn loads this file from the working directory).

Defaults come from `make bench` measurements (README, "Desempenho"): the work is
waiting on GLPI, so threads are cheap concurrency and each thread keeps its own
GLPI session.
"""
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# A request waits at most a few GLPI timeouts; past this gunicorn restarts the worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
accesslog = None  # the app writes one JSON line per request


# The delivery worker finishes the delivery under way within this, before the arbiter's kill.
DELIVERY_STOP_SECONDS = graceful_timeout - 5


def _extension(worker, name):
    app = getattr(worker, "wsgi", None)
    return app.extensions.get(name) if app is not None and hasattr(app, "extensions") else None


def post_worker_init(worker):
    """Each worker process (after the fork) runs a delivery worker; the store's lease lets one drain."""
    delivery = _extension(worker, "delivery_worker")
    if delivery is not None:
        delivery.start()


def worker_exit(server, worker):
    """After the last request: stop the delivery worker, then kill the worker's GLPI sessions so
    they do not linger until PHP's garbage collection."""
    delivery = _extension(worker, "delivery_worker")
    if delivery is not None:
        delivery.stop(timeout=DELIVERY_STOP_SECONDS)
    client = _extension(worker, "glpi_client")
    if client is not None:
        client.close()
