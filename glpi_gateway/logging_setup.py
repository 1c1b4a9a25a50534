"""JSON log lines on stderr, with every configured secret masked before it is written."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

# The loggers configured here: the package's modules, and the GLPI client at the root (card layout).
LOGGER_NAMES = ("glpi_gateway", "glpi_client")
MASK = "***"
# Attributes a log call may pass with `extra=` that belong in the JSON line.
CONTEXT_FIELDS = (
    "event",  # stable name of what happened, for alerts and tests; the message is for people
    "request_id",
    "api_key",
    "client_ip",
    "method",
    "path",
    "status",
    "duration_ms",
    "glpi_calls",
    "ticket_id",
    "protocolo",
    "codigo",
    "owner",  # which process holds the delivery queue's lease
    "usuario",  # the operating-system user behind a change made with `python app.py fila`
)


class SecretMaskingFilter(logging.Filter):
    """Renders the message and traceback with the secrets replaced by `***`."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self._secrets = [secret for secret in secrets if secret]

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.mask(record.getMessage())
        record.args = None
        for name in CONTEXT_FIELDS:  # a client may put a secret in a path or a request id
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, self.mask(value))
        if record.exc_info:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class ContextFilter(logging.Filter):
    """Adds the current request's context (e.g. its id) to records that lack it."""

    def __init__(self, context: Callable[[], dict]):
        super().__init__()
        self._context = context

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in self._context().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # which gunicorn worker
            "msg": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in CONTEXT_FIELDS if hasattr(record, name)})
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, secrets: list[str], context: Callable[[], dict] = dict) -> None:
    """(Re)configure the gateway's loggers; calling it again replaces the previous handler.

    `context` returns fields to add to every line (e.g. the current request id).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter(context))
    handler.addFilter(SecretMaskingFilter(secrets))
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name)
        for previous in list(logger.handlers):
            logger.removeHandler(previous)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
