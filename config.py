"""Gateway configuration, read once from environment variables at start-up.

A `.env` file in the working directory is loaded first when present; variables
already set in the environment win over it. Every problem names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, fields
from typing import Literal, overload
from urllib.parse import urlparse

from dotenv import dotenv_values

from glpi_gateway.validation import DEFAULT_URGENCY, MAX_URGENCY

# REDIS_URL may carry the Redis password.
SECRET_FIELDS = frozenset({"glpi_app_token", "glpi_user_token", "redis_url"})
REDIS_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "sim"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "nao", "não"})
# One CSP source that may embed the form: a keyword, `*`, or an http(s) origin (a `*.` subdomain
# wildcard and a port allowed). Nothing else, so the value cannot break out of the header.
_FRAME_ANCESTOR = re.compile(r"\*|'self'|'none'|https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?")
API_KEY_MIN_LENGTH = 32
_API_KEY_NAME = re.compile(r"[a-z0-9_-]{1,64}")
# Printable ASCII without spaces or commas: a key must survive an HTTP header and the list syntax.
_API_KEY_CHARS = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
# A GLPI token goes into an HTTP header: visible ASCII, nothing else.
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")
RATE_WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"([0-9]{1,9})\s*/\s*([a-z]+)")


class ConfigError(ValueError):
    """The environment does not describe a usable gateway; the message names the variable."""


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` requests per `window_seconds`, e.g. `20/hour`."""

    limit: int
    window_seconds: int

    def __str__(self) -> str:
        unit = next(name for name, seconds in RATE_WINDOWS.items() if seconds == self.window_seconds)
        return f"{self.limit}/{unit}"


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
    # Seconds a ticket's live state is reused by GET /chamados/<protocolo> (0: always asked).
    glpi_follow_cache_ttl: float = 5.0
    health_queue_max_age: float = 900.0
    max_body_bytes: int = 64 * 1024
    attachments_max_count: int = 5
    attachments_max_bytes: int = 5 * 1024 * 1024
    # A multipart body carries the files besides the fields: room for every file at its largest,
    # plus a JSON body's worth for the fields and the multipart framing.
    max_multipart_body_bytes: int = 5 * 5 * 1024 * 1024 + 64 * 1024
    # The public form key (FORM_API_KEY_NAME) gets fewer, smaller files of the safer types.
    form_attachments_max_count: int = 3
    form_attachments_max_bytes: int = 2 * 1024 * 1024
    form_max_multipart_body_bytes: int = 3 * 2 * 1024 * 1024 + 64 * 1024
    # Multipart requests one process handles at once; beyond it, 503 with Retry-After.
    multipart_max_in_flight: int = 4
    log_level: str = "INFO"
    metrics_enabled: bool = True
    form_frame_ancestors: str = "*"
    # Leading zero bits of the form's proof of work (challenge.py); 0 turns the challenge off.
    form_challenge_difficulty: int = 16
    form_challenge_ttl: int = 1800  # seconds a challenge stays valid: a person may type slowly
    # What the public form key may choose: anyone can send it (security review, finding 14).
    form_categories: tuple[int, ...] = ()  # the ITIL categories it may name in `categoria`
    form_max_urgency: int = DEFAULT_URGENCY  # the highest `urgencia` it may send
    api_keys: tuple[tuple[str, str], ...] = ()  # (name, key) pairs
    form_api_key_name: str | None = None  # the entry of api_keys that the contact form carries
    cors_origins: tuple[str, ...] = ()
    rate_limit_per_ip: RateLimit | None = None
    rate_limit_per_key: RateLimit | None = None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    rate_limit_ipv6_prefix: int = 64  # IPv6 clients share the per-IP limit within a network this long
    data_dir: str = "./data"
    redis_url: str | None = None
    redis_key_prefix: str = "glpi-gateway:"
    idempotency_ttl: float = 86400.0
    # Days a created ticket stays reachable by its protocol (GET /chamados/<protocolo>).
    protocol_ttl_days: int = 180
    # Lookups of GET /chamados/<protocolo> per client IP: the protocol is the credential.
    rate_limit_lookup_per_ip: RateLimit | None = RateLimit(60, 60)
    dedupe_window_seconds: float = 600.0  # 0: a request without Idempotency-Key is never deduplicated
    queue_when_unavailable: bool = True
    queue_retry_max_seconds: float = 300.0
    # Bytes of attachments the queue may hold at once (files of requests waiting for GLPI); 0: none.
    queue_max_attachment_bytes: int = 500 * 1024 * 1024
    # GLPI notifies email_cliente at most this often per recipient (None: never, outside the keys below).
    email_notify_limit: RateLimit | None = RateLimit(3, 86400)
    email_notify_unlimited_keys: tuple[str, ...] = ()  # private keys whose e-mails always notify

    def __repr__(self) -> str:
        shown = []
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in SECRET_FIELDS and value:
                value = "***"
            elif field.name == "api_keys":
                value = tuple((name, "***") for name, _ in value)
            shown.append(f"{field.name}={value!r}")
        return f"Config({', '.join(shown)})"

    @property
    def protocol_ttl_seconds(self) -> float:
        return self.protocol_ttl_days * 86400.0

    @property
    def form_api_key(self) -> str | None:
        """The key the gateway publishes in its contact form (README, "Chave do formulário")."""
        return next((key for name, key in self.api_keys if name == self.form_api_key_name), None)

    def secrets(self) -> list[str]:
        """The secret values, for log and response scrubbing."""
        values = [self.glpi_app_token, self.glpi_user_token, *(key for _, key in self.api_keys)]
        if self.redis_url:  # the whole URL, and its password wherever else it may show up
            values += [self.redis_url, urlparse(self.redis_url).password]
        return [value for value in values if value]


@dataclass(frozen=True)
class StoreSettings:
    """What opening the store takes, read like the gateway reads it: `python app.py fila` works with
    the gateway's environment even when the rest of it (GLPI, keys) is missing or wrong."""

    data_dir: str
    redis_url: str | None
    redis_key_prefix: str
    idempotency_ttl: float
    log_level: str

    def secrets(self) -> list[str]:
        values = [self.redis_url, urlparse(self.redis_url).password] if self.redis_url else []
        return [value for value in values if value]


def load_store_settings(environ: dict[str, str] | None = None, env_file: str | None = ".env") -> StoreSettings:
    """The store's variables from `environ` (default: os.environ plus `.env`), as load_config reads them."""
    return _store_settings(_Env(_environment(environ, env_file)))


def _store_settings(env: _Env) -> StoreSettings:
    return StoreSettings(
        data_dir=env.text("DATA_DIR") or "./data",
        redis_url=env.redis_url("REDIS_URL"),
        redis_key_prefix=env.text("REDIS_KEY_PREFIX") or "glpi-gateway:",
        idempotency_ttl=env.number("IDEMPOTENCY_TTL", default=86400.0, minimum=1),
        log_level=env.choice("LOG_LEVEL", LOG_LEVELS, default="INFO"),
    )


def _environment(environ: dict[str, str] | None, env_file: str | None) -> dict[str, str]:
    if environ is not None:
        return environ
    environ = {}
    if env_file and os.path.isfile(env_file):
        environ.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    environ.update(os.environ)
    return environ


def load_config(environ: dict[str, str] | None = None, env_file: str | None = ".env") -> Config:
    """Build the configuration from `environ` (default: os.environ plus `.env`)."""
    env = _Env(_environment(environ, env_file))
    store = _store_settings(env)
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
    form_attachments_max_count = env.integer("FORM_ATTACHMENTS_MAX_COUNT", default=min(3, attachments_max_count))
    form_attachments_max_bytes = env.integer(
        "FORM_ATTACHMENTS_MAX_BYTES", default=min(2 * 1024 * 1024, attachments_max_bytes)
    )
    all_form_attachments = form_attachments_max_count * form_attachments_max_bytes
    form_max_multipart_body_bytes = env.integer(
        "FORM_MAX_MULTIPART_BODY_BYTES", default=min(all_form_attachments + max_body_bytes, max_multipart_body_bytes)
    )
    if form_max_multipart_body_bytes < all_form_attachments:
        raise ConfigError(
            f"FORM_MAX_MULTIPART_BODY_BYTES={form_max_multipart_body_bytes} não comporta FORM_ATTACHMENTS_MAX_COUNT × "
            f"FORM_ATTACHMENTS_MAX_BYTES = {all_form_attachments} bytes de anexos; aumente-a ou deixe-a vazia"
        )
    api_keys = env.api_keys("API_KEYS")
    rate_limit_per_key = env.rate("RATE_LIMIT_PER_KEY")
    if rate_limit_per_key and not api_keys:
        raise ConfigError("RATE_LIMIT_PER_KEY só vale com chaves de API: defina API_KEYS")
    form_api_key_name = _form_api_key_name(env.text("FORM_API_KEY_NAME"), api_keys)
    email_notify_unlimited_keys = _email_notify_unlimited_keys(
        env.items("EMAIL_NOTIFY_UNLIMITED_KEYS"), api_keys, form_api_key_name
    )
    return Config(
        glpi_url=env.url("GLPI_URL"),
        glpi_user_token=env.token("GLPI_USER_TOKEN", required=True),
        glpi_app_token=env.token("GLPI_APP_TOKEN"),
        glpi_cnpj_field_id=env.integer("GLPI_CNPJ_FIELD_ID"),
        glpi_cnpj_field_label=env.text("GLPI_CNPJ_FIELD_LABEL") or "CNPJ",
        glpi_default_category_id=env.integer("GLPI_DEFAULT_CATEGORY_ID"),
        glpi_requester_user_id=env.integer("GLPI_REQUESTER_USER_ID"),
        glpi_request_type_id=env.integer("GLPI_REQUEST_TYPE_ID"),
        glpi_timeout=env.number("GLPI_TIMEOUT", default=10.0),
        glpi_verify_tls=env.boolean("GLPI_VERIFY_TLS", default=True),
        glpi_entity_cache_ttl=env.number("GLPI_ENTITY_CACHE_TTL", default=300.0, minimum=0),
        glpi_follow_cache_ttl=env.number("GLPI_FOLLOW_CACHE_TTL", default=5.0, minimum=0),
        glpi_entity_negative_cache_ttl=env.number("GLPI_ENTITY_NEGATIVE_CACHE_TTL", default=30.0, minimum=0),
        glpi_session_max_age=env.number("GLPI_SESSION_MAX_AGE", default=900.0),
        health_cache_ttl=env.number("HEALTH_CACHE_TTL", default=5.0, minimum=0),
        health_queue_max_age=env.number("HEALTH_QUEUE_MAX_AGE", default=900.0, minimum=0),
        max_body_bytes=max_body_bytes,
        attachments_max_count=attachments_max_count,
        attachments_max_bytes=attachments_max_bytes,
        max_multipart_body_bytes=max_multipart_body_bytes,
        form_attachments_max_count=form_attachments_max_count,
        form_attachments_max_bytes=form_attachments_max_bytes,
        form_max_multipart_body_bytes=form_max_multipart_body_bytes,
        multipart_max_in_flight=env.integer("MULTIPART_MAX_IN_FLIGHT", default=4),
        log_level=store.log_level,
        metrics_enabled=env.boolean("METRICS_ENABLED", default=True),
        form_frame_ancestors=env.frame_ancestors("FORM_FRAME_ANCESTORS", default="*"),
        form_challenge_difficulty=env.integer_between("FORM_CHALLENGE_DIFFICULTY", default=16, low=0, high=28),
        form_challenge_ttl=env.integer_between("FORM_CHALLENGE_TTL", default=1800, low=60, high=86400),
        form_categories=env.integers("FORM_CATEGORIES"),
        form_max_urgency=env.integer_between(
            "FORM_MAX_URGENCY", default=DEFAULT_URGENCY, low=DEFAULT_URGENCY, high=MAX_URGENCY
        ),
        api_keys=api_keys,
        form_api_key_name=form_api_key_name,
        cors_origins=env.origins("CORS_ORIGINS"),
        rate_limit_per_ip=env.rate("RATE_LIMIT_PER_IP"),
        rate_limit_per_key=rate_limit_per_key,
        trusted_proxies=env.networks("TRUSTED_PROXIES"),
        rate_limit_ipv6_prefix=_ipv6_prefix(env.integer("RATE_LIMIT_IPV6_PREFIX", default=64)),
        data_dir=store.data_dir,
        redis_url=store.redis_url,
        redis_key_prefix=store.redis_key_prefix,
        idempotency_ttl=store.idempotency_ttl,
        protocol_ttl_days=env.integer("PROTOCOL_TTL_DAYS", default=180),
        rate_limit_lookup_per_ip=env.rate("RATE_LIMIT_LOOKUP_PER_IP") or RateLimit(60, 60),
        dedupe_window_seconds=env.number("DEDUPE_WINDOW_SECONDS", default=600.0, minimum=0),
        queue_when_unavailable=env.boolean("QUEUE_WHEN_UNAVAILABLE", default=True),
        queue_retry_max_seconds=env.number("QUEUE_RETRY_MAX_SECONDS", default=300.0, minimum=1),
        queue_max_attachment_bytes=env.integer_between(
            "QUEUE_MAX_ATTACHMENT_BYTES", default=500 * 1024 * 1024, low=0, high=9_999_999_999
        ),
        email_notify_limit=_email_notify_limit(env),
        email_notify_unlimited_keys=email_notify_unlimited_keys,
    )


def _ipv6_prefix(bits: int) -> int:
    if not 16 <= bits <= 128:
        raise ConfigError(f"RATE_LIMIT_IPV6_PREFIX deve ser de 16 a 128 bits, ex. 64, 56 ou 48 (recebido: {bits})")
    return bits


def _email_notify_limit(env: _Env) -> RateLimit | None:
    """`3/day` by default; `off` means GLPI never notifies email_cliente (outside the unlimited keys)."""
    value = env.text("EMAIL_NOTIFY_LIMIT")
    if value is None:
        return RateLimit(3, RATE_WINDOWS["day"])
    if value.lower() in FALSE_WORDS:
        return None
    return env.rate("EMAIL_NOTIFY_LIMIT")


def _email_notify_unlimited_keys(
    names: list[str], api_keys: tuple[tuple[str, str], ...], form_api_key_name: str | None
) -> tuple[str, ...]:
    """Names of private keys in API_KEYS; never the public form key, never a key itself."""
    known = [name for name, _ in api_keys]
    for name in names:
        if any(name == key for _, key in api_keys):
            raise ConfigError("EMAIL_NOTIFY_UNLIMITED_KEYS recebe nomes de chaves de API_KEYS, não as próprias chaves")
        if name == form_api_key_name:
            raise ConfigError(
                "EMAIL_NOTIFY_UNLIMITED_KEYS não pode incluir a chave do formulário (FORM_API_KEY_NAME): "
                "ela é pública, e o GLPI enviaria e-mails a qualquer endereço"
            )
        if name not in known:
            raise ConfigError(
                f"EMAIL_NOTIFY_UNLIMITED_KEYS deve listar nomes de API_KEYS (nomes configurados: "
                f"{', '.join(known) or 'nenhum'})"
            )
    return tuple(names)


def _form_api_key_name(value: str | None, api_keys: tuple[tuple[str, str], ...]) -> str | None:
    """The value must be one of the names in API_KEYS. Never echoed: it may be a key pasted by mistake."""
    if value is None:
        return None
    if not api_keys:
        raise ConfigError("FORM_API_KEY_NAME só vale com chaves de API: defina API_KEYS")
    if any(value == key for _, key in api_keys):
        raise ConfigError("FORM_API_KEY_NAME recebe o nome de uma chave de API_KEYS, não a própria chave")
    names = [name for name, _ in api_keys]
    if value not in names:
        raise ConfigError(
            f"FORM_API_KEY_NAME deve ser o nome de uma das chaves de API_KEYS (nomes configurados: {', '.join(names)})"
        )
    return value


class _Env:
    """Typed readers over a mapping of environment variables; blank means unset."""

    def __init__(self, environ: dict[str, str]):
        self._environ = environ

    @overload
    def text(self, name: str, required: Literal[True]) -> str: ...
    @overload
    def text(self, name: str, required: bool = False) -> str | None: ...
    def text(self, name: str, required: bool = False) -> str | None:
        value = (self._environ.get(name) or "").strip()
        if not value:
            if required:
                raise ConfigError(f"{name} é obrigatória e não foi definida")
            return None
        return value

    @overload
    def token(self, name: str, required: Literal[True]) -> str: ...
    @overload
    def token(self, name: str, required: bool = False) -> str | None: ...
    def token(self, name: str, required: bool = False) -> str | None:
        """A GLPI token: visible ASCII only. A stray newline or space inside would end up in an HTTP
        header, where `requests` refuses it and prints it; the message names only the variable."""
        value = self.text(name, required)
        if value is not None and not _TOKEN_CHARS.fullmatch(value):
            raise ConfigError(
                f"{name} deve ter só caracteres ASCII visíveis (sem espaço, quebra de linha nem caractere de "
                "controle); confira se o valor não foi colado com uma quebra de linha"
            )
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

    @overload
    def integer(self, name: str, default: int) -> int: ...
    @overload
    def integer(self, name: str, default: None = None) -> int | None: ...
    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        if not _is_positive_integer(value):
            raise ConfigError(f"{name} deve ser um número inteiro positivo (recebido: {value!r})")
        return int(value)

    def integers(self, name: str) -> tuple[int, ...]:
        """A comma-separated list of positive integers (ids), in the order given."""
        items = self.items(name)
        for item in items:
            if not _is_positive_integer(item):
                raise ConfigError(
                    f"{name} deve listar números inteiros positivos separados por vírgula (recebido: {item!r})"
                )
        return tuple(int(item) for item in items)

    def integer_between(self, name: str, default: int, low: int, high: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        if not re.fullmatch(r"[0-9]{1,10}", value) or not low <= int(value) <= high:
            raise ConfigError(f"{name} deve ser um número inteiro de {low} a {high} (recebido: {value!r})")
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

    def items(self, name: str) -> list[str]:
        """A comma-separated list, blank items dropped."""
        return [item.strip() for item in (self.text(name) or "").split(",") if item.strip()]

    def api_keys(self, name: str) -> tuple[tuple[str, str], ...]:
        """`name:key` pairs. The messages never repeat a key, nor an item that may be one."""
        pairs: list[tuple[str, str]] = []
        for position, item in enumerate(self.items(name), start=1):
            key_name, separator, key = item.partition(":")
            key_name, key = key_name.strip(), key.strip()
            if not separator or not _API_KEY_NAME.fullmatch(key_name):
                raise ConfigError(
                    f"{name}: o item {position} deve ser nome:chave, com nome de letras minúsculas, "
                    "dígitos, _ ou - (até 64)"
                )
            if len(key) < API_KEY_MIN_LENGTH or not _API_KEY_CHARS.fullmatch(key):
                raise ConfigError(
                    f"{name}: a chave {key_name!r} deve ter ao menos {API_KEY_MIN_LENGTH} caracteres ASCII "
                    "visíveis, sem espaço nem vírgula (tem "
                    f"{len(key)}); gere uma com: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
            if any(key_name == known for known, _ in pairs):
                raise ConfigError(f"{name}: o nome {key_name!r} aparece mais de uma vez")
            if any(key == known for _, known in pairs):
                raise ConfigError(f"{name}: a chave {key_name!r} repete a chave de outro nome")
            pairs.append((key_name, key))
        return tuple(pairs)

    def origins(self, name: str) -> tuple[str, ...]:
        origins = []
        for item in self.items(name):
            parsed = urlparse(item)
            if (
                parsed.scheme not in ("http", "https")
                or not parsed.hostname
                or parsed.path
                or parsed.params
                or parsed.query
                or parsed.fragment
                or "@" in parsed.netloc
                or "*" in parsed.netloc
            ):
                raise ConfigError(
                    f"{name} deve listar origens exatas separadas por vírgula, como "
                    f"https://www.exemplo.com.br (sem caminho nem barra final; '*' não é aceito) (recebido: {item!r})"
                )
            origins.append(f"{parsed.scheme}://{parsed.netloc}".lower())
        return tuple(origins)

    def rate(self, name: str) -> RateLimit | None:
        value = self.text(name)
        if value is None:
            return None
        match = _RATE.fullmatch(value.lower())
        if not match or int(match.group(1)) == 0 or match.group(2) not in RATE_WINDOWS:
            raise ConfigError(
                f"{name} deve ser número/período, com período {', '.join(RATE_WINDOWS)}; "
                f"por exemplo 20/hour ou 600/minute (recebido: {value!r})"
            )
        return RateLimit(int(match.group(1)), RATE_WINDOWS[match.group(2)])

    def networks(self, name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        networks = []
        for item in self.items(name):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(
                    f"{name} deve listar IPs ou redes CIDR separados por vírgula, como 10.0.0.1,172.16.0.0/12 "
                    f"(recebido: {item!r})"
                ) from None
        return tuple(networks)

    def redis_url(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in REDIS_SCHEMES or not (parsed.hostname or parsed.path):
            # Not echoed: the URL may carry a password.
            raise ConfigError(
                f"{name} deve ser uma URL redis://, rediss:// ou unix://, por exemplo redis://127.0.0.1:6379/0"
            )
        return value


def _is_positive_integer(text: str) -> bool:
    return re.fullmatch(r"[0-9]{1,10}", text) is not None and int(text) > 0
