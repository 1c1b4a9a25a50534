"""Gateway configuration, read once from environment variables at start-up.

A `.env` file in the working directory is loaded first when present; variables
already set in the environment win over it. Every problem names the variable.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from urllib.parse import urlparse

from dotenv import dotenv_values

# REDIS_URL may carry the Redis password.
SECRET_FIELDS = frozenset({"glpi_app_token", "glpi_user_token", "redis_url"})
REDIS_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "sim"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "nao", "não"})


class ConfigError(ValueError):
    """The environment does not describe a usable gateway; the message names the variable."""


@dataclass(frozen=True)
class Config:
    glpi_url: str
    glpi_user_token: str
    glpi_app_token: str | None = None
    glpi_cnpj_field_id: int | None = None
    glpi_cnpj_field_label: str = "CNPJ"
    glpi_default_category_id: int | None = None
    glpi_requester_user_id: int | None = None
    glpi_request_type_id: int | None = None
    glpi_timeout: float = 10.0
    glpi_verify_tls: bool = True
    glpi_entity_cache_ttl: float = 300.0
    glpi_entity_negative_cache_ttl: float = 30.0
    glpi_session_max_age: float = 900.0
    max_body_bytes: int = 64 * 1024
    log_level: str = "INFO"
    data_dir: str = "./data"
    redis_url: str | None = None
    redis_key_prefix: str = "glpi-gateway:"
    idempotency_ttl: float = 86400.0
    queue_when_unavailable: bool = True
    queue_retry_max_seconds: float = 300.0

    def __repr__(self) -> str:
        shown = []
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in SECRET_FIELDS and value:
                value = "***"
            shown.append(f"{field.name}={value!r}")
        return f"Config({', '.join(shown)})"

    def secrets(self) -> list[str]:
        """The secret values, for log and response scrubbing."""
        return [getattr(self, name) for name in SECRET_FIELDS if getattr(self, name)]


def load_config(environ: dict[str, str] | None = None, env_file: str | None = ".env") -> Config:
    """Build the configuration from `environ` (default: os.environ plus `.env`)."""
    if environ is None:
        environ = {}
        if env_file and os.path.isfile(env_file):
            environ.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        environ.update(os.environ)
    env = _Env(environ)
    return Config(
        glpi_url=env.url("GLPI_URL"),
        glpi_user_token=env.text("GLPI_USER_TOKEN", required=True),
        glpi_app_token=env.text("GLPI_APP_TOKEN"),
        glpi_cnpj_field_id=env.integer("GLPI_CNPJ_FIELD_ID"),
        glpi_cnpj_field_label=env.text("GLPI_CNPJ_FIELD_LABEL") or "CNPJ",
        glpi_default_category_id=env.integer("GLPI_DEFAULT_CATEGORY_ID"),
        glpi_requester_user_id=env.integer("GLPI_REQUESTER_USER_ID"),
        glpi_request_type_id=env.integer("GLPI_REQUEST_TYPE_ID"),
        glpi_timeout=env.number("GLPI_TIMEOUT", default=10.0),
        glpi_verify_tls=env.boolean("GLPI_VERIFY_TLS", default=True),
        glpi_entity_cache_ttl=env.number("GLPI_ENTITY_CACHE_TTL", default=300.0, minimum=0),
        glpi_entity_negative_cache_ttl=env.number(
            "GLPI_ENTITY_NEGATIVE_CACHE_TTL", default=30.0, minimum=0
        ),
        glpi_session_max_age=env.number("GLPI_SESSION_MAX_AGE", default=900.0),
        max_body_bytes=env.integer("MAX_BODY_BYTES", default=64 * 1024),
        log_level=env.choice("LOG_LEVEL", LOG_LEVELS, default="INFO"),
        data_dir=env.text("DATA_DIR") or "./data",
        redis_url=env.redis_url("REDIS_URL"),
        redis_key_prefix=env.text("REDIS_KEY_PREFIX") or "glpi-gateway:",
        idempotency_ttl=env.number("IDEMPOTENCY_TTL", default=86400.0, minimum=1),
        queue_when_unavailable=env.boolean("QUEUE_WHEN_UNAVAILABLE", default=True),
        queue_retry_max_seconds=env.number("QUEUE_RETRY_MAX_SECONDS", default=300.0, minimum=1),
    )


class _Env:
    """Typed readers over a mapping of environment variables; blank means unset."""

    def __init__(self, environ: dict[str, str]):
        self._environ = environ

    def text(self, name: str, required: bool = False) -> str | None:
        value = (self._environ.get(name) or "").strip()
        if not value:
            if required:
                raise ConfigError(f"{name} é obrigatória e não foi definida")
            return None
        return value

    def url(self, name: str) -> str:
        value = self.text(name, required=True)
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"{name} deve ser uma URL http(s) completa, por exemplo "
                f"https://glpi.exemplo.com.br/apirest.php (recebido: {value!r})"
            )
        return value.rstrip("/")

    def redis_url(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if urlparse(value).scheme not in REDIS_SCHEMES:
            # The value may hold a password: name the variable, not the value.
            raise ConfigError(f"{name} deve ser uma URL redis://, rediss:// ou unix:// (ex. redis://localhost:6379/0)")
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        if not re.fullmatch(r"[0-9]{1,10}", value) or int(value) <= 0:
            raise ConfigError(f"{name} deve ser um número inteiro positivo (recebido: {value!r})")
        return int(value)

    def number(self, name: str, default: float, minimum: float = 0.001) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not number >= minimum or number == float("inf"):
            raise ConfigError(f"{name} deve ser um número ≥ {minimum:g} (recebido: {value!r})")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise ConfigError(f"{name} deve ser true ou false (recebido: {value!r})")

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(name)
        if value is None:
            return default
        if value.upper() not in choices:
            raise ConfigError(f"{name} deve ser um de {', '.join(choices)} (recebido: {value!r})")
        return value.upper()
