"""gunicorn settings, read from the environment (gunicorn loads this file from the working directory).

Defaults come from `bench/bench.py --worker-models` (README, "Desempenho"): a request
spends almost all its time waiting on GLPI, so threads are cheap concurrency (and each
keeps its own GLPI session); one process per core runs the Python parts in parallel;
16 threads per process let one process serve 16 clients on keep-alive connections.
"""

import glob
import os
import shutil
import sys
import tempfile

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or "2")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or "16")
# A request waits at most a few GLPI timeouts; past this gunicorn restarts the worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or "60")
graceful_timeout = 30
keepalive = 5
accesslog = None  # the app writes one JSON line per request
# gunicorn's control socket (gunicornc: reload, resize, shut down) is not used: without it nothing
# is written under $HOME (the image's user has none, and its root filesystem may be read-only) and
# gateways started side by side do not share one socket path.
control_socket_disable = True

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server):
    """Give the workers' metrics (prometheus_client multiprocess mode) an empty directory.

    It must be set before any worker imports prometheus_client, which is why the app
    cannot be preloaded. Files left by a previous run are wiped: their counts are not ours.
    """
    if server.cfg.preload_app:
        sys.exit("preload_app (--preload) não é suportado: as métricas precisam que cada worker carregue o app")
    directory = os.environ.get(METRICS_DIR_VARIABLE, "").strip()
    if directory:
        try:
            os.makedirs(directory, exist_ok=True)
            for stale in glob.glob(os.path.join(directory, "*.db")):
                os.remove(stale)
        except OSError as error:
            sys.exit(f"{METRICS_DIR_VARIABLE}={directory!r} não pode ser usado: {error}")
    else:
        directory = tempfile.mkdtemp(prefix="glpi-gateway-metrics-")
        server.metrics_dir_created = directory
    os.environ[METRICS_DIR_VARIABLE] = directory
    server.log.info("metrics of every worker kept in %s", directory)


def child_exit(server, worker):
    """Drop a dead worker's live gauges; its counters stay, so totals never go down."""
    # Imported only now: prometheus_client picks its storage when first imported, and
    # workers forked from a master that imported it before on_starting would keep theirs
    # in memory, invisible to the scrape.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# The delivery worker finishes the delivery under way within this, before the arbiter's kill.
DELIVERY_STOP_SECONDS = graceful_timeout - 5


def _services(worker):
    from glpi_gateway.web import EXTENSION

    app = getattr(worker, "wsgi", None)
    return app.extensions.get(EXTENSION) if app is not None and hasattr(app, "extensions") else None


def post_worker_init(worker):
    """Each worker process (after the fork) runs a delivery worker; the store's lease lets one drain."""
    services = _services(worker)
    if services is not None:
        services.start()


def worker_exit(server, worker):
    """After the last request: stop the delivery worker, then kill the worker's GLPI sessions."""
    services = _services(worker)
    if services is not None:
        services.stop(timeout=DELIVERY_STOP_SECONDS)


def on_exit(server):
    created = getattr(server, "metrics_dir_created", None)
    if created:
        shutil.rmtree(created, ignore_errors=True)
