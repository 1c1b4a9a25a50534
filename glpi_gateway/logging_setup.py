"""JSON log lines on stderr, with every configured secret masked before it is written."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

# The loggers configured here: the package's modules, the GLPI client at the root (card layout), and
# the ones Flask and Werkzeug write to on their own (`app` is the Flask app's logger, named after
# app.py), so that no line escapes the JSON format and the secret mask. gunicorn's own loggers
# get the same formatter and mask from gunicorn.conf.py (`logconfig_dict`).
LOGGER_NAMES = ("glpi_gateway", "glpi_client", "app", "flask", "werkzeug")
# The variables whose values are masked in the lines gunicorn writes before (or without) the app.
SECRET_VARIABLES = ("GLPI_USER_TOKEN", "GLPI_APP_TOKEN", "REDIS_URL")
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


def environment_secrets(environ: dict[str, str]) -> list[str]:
    """The secret values in `environ`, read leniently (no validation: this must never fail), for
    the log lines written before the configuration is loaded: tokens (and each line of a token
    pasted with a newline), the Redis URL and its password, and each key of API_KEYS."""
    from urllib.parse import urlparse

    values: list[str] = []
    for name in SECRET_VARIABLES:
        value = (environ.get(name) or "").strip()
        if value:
            values += [value, *(part.strip() for part in value.splitlines())]
    try:
        values.append(urlparse((environ.get("REDIS_URL") or "").strip()).password or "")
    except ValueError:
        pass
    for item in (environ.get("API_KEYS") or "").split(","):
        values.append(item.partition(":")[2].strip())
    # Longest first, so that a secret containing another is masked whole; short ones are not secrets.
    return sorted({value for value in values if len(value) >= 8}, key=len, reverse=True)


def gunicorn_filter() -> SecretMaskingFilter:
    """The mask for gunicorn's loggers (logconfig_dict in gunicorn.conf.py): secrets from the
    process environment and the .env file, as config.py reads them."""
    import os

    from dotenv import dotenv_values

    environ = {k: v for k, v in dotenv_values(".env").items() if v is not None} if os.path.isfile(".env") else {}
    environ.update(os.environ)
    return SecretMaskingFilter(environment_secrets(environ))


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
