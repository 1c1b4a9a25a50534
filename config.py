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

SECRET_FIELDS = frozenset({"glpi_app_token", "glpi_user_token"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "sim"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "nao", "não"})
# One CSP source that may embed the form: a keyword, `*`, or an http(s) origin (a `*.` subdomain
# wildcard and a port allowed). Nothing else, so the value cannot break out of the header.
_FRAME_ANCESTOR = re.compile(r"\*|'self'|'none'|https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?")


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
    health_cache_ttl: float = 5.0
    max_body_bytes: int = 64 * 1024
    attachments_max_count: int = 5
    attachments_max_bytes: int = 5 * 1024 * 1024
    # A multipart body carries the files besides the fields: room for every file at its largest,
    # plus a JSON body's worth for the fields and the multipart framing.
    max_multipart_body_bytes: int = 5 * 5 * 1024 * 1024 + 64 * 1024
    log_level: str = "INFO"
    metrics_enabled: bool = True
    form_frame_ancestors: str = "*"

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
    max_body_bytes = env.integer("MAX_BODY_BYTES", default=64 * 1024)
    attachments_max_count = env.integer("ATTACHMENTS_MAX_COUNT", default=5)
    attachments_max_bytes = env.integer("ATTACHMENTS_MAX_BYTES", default=5 * 1024 * 1024)
    all_attachments = attachments_max_count * attachments_max_bytes
    max_multipart_body_bytes = env.integer("MAX_MULTIPART_BODY_BYTES", default=all_attachments + max_body_bytes)
    if max_multipart_body_bytes < all_attachments:
        raise ConfigError(
            f"MAX_MULTIPART_BODY_BYTES={max_multipart_body_bytes} não comporta ATTACHMENTS_MAX_COUNT × "
            f"ATTACHMENTS_MAX_BYTES = {all_attachments} bytes de anexos; aumente-a ou deixe-a vazia"
        )
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
        health_cache_ttl=env.number("HEALTH_CACHE_TTL", default=5.0, minimum=0),
        max_body_bytes=max_body_bytes,
        attachments_max_count=attachments_max_count,
        attachments_max_bytes=attachments_max_bytes,
        max_multipart_body_bytes=max_multipart_body_bytes,
        log_level=env.choice("LOG_LEVEL", LOG_LEVELS, default="INFO"),
        metrics_enabled=env.boolean("METRICS_ENABLED", default=True),
        form_frame_ancestors=env.frame_ancestors("FORM_FRAME_ANCESTORS", default="*"),
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

    def frame_ancestors(self, name: str, default: str) -> str:
        """Sources separated by spaces or commas, returned space-separated for the CSP header."""
        value = self.text(name)
        if value is None:
            return default
        sources = value.replace(",", " ").split()
        for source in sources:
            if not _FRAME_ANCESTOR.fullmatch(source):
                raise ConfigError(
                    f"{name} deve listar origens como https://www.exemplo.com.br, 'self', 'none' ou * "
                    f"(recebido: {source!r})"
                )
        if "'none'" in sources and len(sources) > 1:
            raise ConfigError(f"{name}: 'none' não pode ser combinado com outras origens (recebido: {value!r})")
        return " ".join(sources)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(name)
        if value is None:
            return default
        if value.upper() not in choices:
            raise ConfigError(f"{name} deve ser um de {', '.join(choices)} (recebido: {value!r})")
        return value.upper()
