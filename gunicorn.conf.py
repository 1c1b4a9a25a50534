"""gunicorn settings, read from the environment (gunicorn loads this file from the working directory).

Defaults come from `bench/bench.py --worker-models` (docs/desempenho.md): a request
spends almost all its time waiting on GLPI, so threads are cheap concurrency (and each
keeps its own GLPI session); a process runs its Python on one core (GIL), and its
threads queue for it: on 2 cores, 3 processes answered faster than 2 at 16 and 64
clients. 3 × 11 threads keep about the 32 GLPI sessions of the former 2 × 16.
"""

import glob
import os
import shutil
import sys
import tempfile

from gunicorn import glogging  # type: ignore[import-untyped]

from glpi_gateway.buffering_worker import ConnectionBoard

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or "3")
# gthread with a buffering front (glpi_gateway/buffering_worker.py): a thread only gets a request
# that has fully arrived, so slow clients cost a buffer, not a thread (docs/seguranca.md).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "glpi_gateway.buffering_worker.BufferingThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS") or "11")
# A request waits at most a few GLPI timeouts; past this gunicorn restarts the worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or "60")
graceful_timeout = 30
keepalive = 5
# Connections per process, slow or idle ones included; past it the process stops accepting.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS") or "1000")
# gunicorn >= 25 opens a control socket ($HOME/.gunicorn/gunicorn.ctl) that can reload, stop or
# resize the server; nothing here uses it, and a second instance with the same HOME would take it over.
control_socket_disable = True
accesslog = None  # the app writes one JSON line per request (glpi_gateway/web/context.py)


class GunicornLoggerWithoutAccessLines(glogging.Logger):
    """gunicorn's logger, less its access line: with logconfig_dict below, gunicorn would write one
    for every request besides the app's (and spend a twentieth of a request's CPU formatting it)."""

    def access(self, resp, req, environ, request_time):
        return None


logger_class = GunicornLoggerWithoutAccessLines
# gunicorn's own lines (start-up, worker boot failures with their tracebacks, signals) in the
# gateway's JSON format, with every secret in the environment masked (glpi_gateway/logging_setup.py).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask": {"()": "glpi_gateway.logging_setup.gunicorn_filter"}},
    "formatters": {"json": {"()": "glpi_gateway.logging_setup.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json",
            "filters": ["mask"],
        }
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server):
    """Give the workers' metrics (prometheus_client multiprocess mode) an empty directory, and
    the workers a connection board to share.

    The directory must be set before any worker imports prometheus_client, which is why the app
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
    server.log.info("métricas de todos os workers guardadas em %s", directory)
    # Where the workers post how many connections each holds (glpi_gateway/buffering_worker.py),
    # made before any fork so that they all share it.
    server.connection_board = ConnectionBoard()


def pre_fork(server, worker):
    """Give a buffering worker its slot on the connection board, one no live worker uses."""
    board = getattr(server, "connection_board", None)
    if board is None or not hasattr(worker, "connection_board"):
        return  # another worker class: it accepts as gunicorn does
    taken = {other.board_slot for other in server.WORKERS.values() if getattr(other, "connection_board", None)}
    slot = board.claim(taken)
    if slot is not None:
        worker.connection_board, worker.board_slot = board, slot


def child_exit(server, worker):
    """Drop a dead worker's live gauges (its counters stay, so totals never go down) and free its
    slot on the connection board."""
    board = getattr(worker, "connection_board", None)
    if board is not None:
        board.release(worker.board_slot)
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
