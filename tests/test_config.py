"""Contract of config.py: environment variables (and an optional .env file) become a Config or a ConfigError
that names the variable."""

from __future__ import annotations

import ipaddress
import os

import pytest

from config import Config, ConfigError, RateLimit, load_config
from tests.harness import GATEWAY_VARIABLES

MINIMAL = {"GLPI_URL": "https://glpi.example.com/apirest.php", "GLPI_USER_TOKEN": "user-token-secret-123"}


def config_with(**changes: str) -> Config:
    return load_config({**MINIMAL, **changes}, env_file=None)


def config_error(**changes: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config({**MINIMAL, **changes}, env_file=None)
    return str(caught.value)


@pytest.fixture
def clean_environ(monkeypatch):
    """os.environ without any variable the gateway reads."""
    for name in list(os.environ):
        if name.startswith("GLPI_") or name in GATEWAY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- defaults -------------------------------------------------------------------


def test_minimal_environment_gives_the_defaults():
    config = load_config(dict(MINIMAL), env_file=None)
    assert config == Config(
        glpi_url="https://glpi.example.com/apirest.php",
        glpi_user_token="user-token-secret-123",
        glpi_app_token=None,
        glpi_cnpj_field_id=None,
        glpi_cnpj_field_label="CNPJ",
        glpi_default_category_id=None,
        glpi_requester_user_id=None,
        glpi_request_type_id=None,
        glpi_timeout=10.0,
        glpi_verify_tls=True,
        glpi_entity_cache_ttl=300.0,
        glpi_entity_negative_cache_ttl=30.0,
        glpi_session_max_age=900.0,
        max_body_bytes=64 * 1024,
        attachments_max_count=5,
        attachments_max_bytes=5 * 1024 * 1024,
        max_multipart_body_bytes=5 * 5 * 1024 * 1024 + 64 * 1024,
        log_level="INFO",
        metrics_enabled=True,
        form_frame_ancestors="*",
        api_keys=(),
        cors_origins=(),
        rate_limit_per_ip=None,
        rate_limit_per_key=None,
        trusted_proxies=(),
        data_dir="./data",
        redis_url=None,
    )


def test_blank_variables_count_as_unset():
    config = config_with(
        GLPI_APP_TOKEN="  ", GLPI_CNPJ_FIELD_ID="", GLPI_TIMEOUT=" ", LOG_LEVEL="", GLPI_CNPJ_FIELD_LABEL=" "
    )
    assert config.glpi_app_token is None
    assert config.glpi_cnpj_field_id is None
    assert config.glpi_timeout == 10.0
    assert config.log_level == "INFO"
    assert config.glpi_cnpj_field_label == "CNPJ"


def test_every_variable_is_read_into_its_field():
    config = config_with(
        GLPI_APP_TOKEN="app-token-secret-456",
        GLPI_CNPJ_FIELD_ID="76666",
        GLPI_CNPJ_FIELD_LABEL="Documento",
        GLPI_DEFAULT_CATEGORY_ID="4",
        GLPI_REQUESTER_USER_ID="8",
        GLPI_REQUEST_TYPE_ID="7",
        GLPI_TIMEOUT="2.5",
        GLPI_VERIFY_TLS="false",
        GLPI_ENTITY_CACHE_TTL="0",
        GLPI_ENTITY_NEGATIVE_CACHE_TTL="5",
        GLPI_SESSION_MAX_AGE="60",
        HEALTH_CACHE_TTL="2",
        MAX_BODY_BYTES="1024",
        ATTACHMENTS_MAX_COUNT="2",
        ATTACHMENTS_MAX_BYTES="1000",
        MAX_MULTIPART_BODY_BYTES="5000",
        LOG_LEVEL="debug",
        METRICS_ENABLED="false",
    )
    assert (
        config.glpi_app_token,
        config.glpi_cnpj_field_id,
        config.glpi_cnpj_field_label,
        config.glpi_default_category_id,
        config.glpi_requester_user_id,
        config.glpi_request_type_id,
        config.glpi_timeout,
        config.glpi_verify_tls,
        config.glpi_entity_cache_ttl,
        config.glpi_entity_negative_cache_ttl,
        config.glpi_session_max_age,
        config.health_cache_ttl,
        config.max_body_bytes,
        config.attachments_max_count,
        config.attachments_max_bytes,
        config.max_multipart_body_bytes,
        config.log_level,
        config.metrics_enabled,
    ) == (
        "app-token-secret-456",
        76666,
        "Documento",
        4,
        8,
        7,
        2.5,
        False,
        0.0,
        5.0,
        60.0,
        2.0,
        1024,
        2,
        1000,
        5000,
        "DEBUG",
        False,
    )


def test_values_are_trimmed_and_the_url_loses_its_trailing_slash():
    config = config_with(GLPI_URL="  https://glpi.example.com/apirest.php/  ", GLPI_USER_TOKEN=" tok ")
    assert config.glpi_url == "https://glpi.example.com/apirest.php"
    assert config.glpi_user_token == "tok"


# --- required variables -----------------------------------------------------------


@pytest.mark.parametrize("name", ["GLPI_URL", "GLPI_USER_TOKEN"])
@pytest.mark.parametrize("blank", [None, "", "   "], ids=["absent", "empty", "spaces"])
def test_a_missing_required_variable_is_a_config_error_naming_it(name, blank):
    environ = dict(MINIMAL)
    if blank is None:
        del environ[name]
    else:
        environ[name] = blank
    with pytest.raises(ConfigError, match=name):
        load_config(environ, env_file=None)


@pytest.mark.parametrize(
    "url", ["glpi.example.com/apirest.php", "ftp://glpi.example.com/", "https://", "http:/glpi", "apirest.php"]
)
def test_a_glpi_url_that_is_not_a_full_http_url_is_a_config_error_naming_it(url):
    assert "GLPI_URL" in config_error(GLPI_URL=url)


@pytest.mark.parametrize("url", ["http://localhost/apirest.php", "https://glpi.example.com:8443/glpi/apirest.php"])
def test_http_and_https_urls_are_accepted(url):
    assert config_with(GLPI_URL=url).glpi_url == url


# --- typed values ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "GLPI_CNPJ_FIELD_ID",
        "GLPI_DEFAULT_CATEGORY_ID",
        "GLPI_REQUESTER_USER_ID",
        "GLPI_REQUEST_TYPE_ID",
        "MAX_BODY_BYTES",
        "ATTACHMENTS_MAX_COUNT",
        "ATTACHMENTS_MAX_BYTES",
        "MAX_MULTIPART_BODY_BYTES",
    ],
)
@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "7a", "1e3"])
def test_an_id_that_is_not_a_positive_integer_is_a_config_error_naming_the_variable(name, value):
    assert name in config_error(**{name: value})


def test_the_multipart_body_limit_follows_the_attachment_limits_unless_set():
    config = config_with(ATTACHMENTS_MAX_COUNT="3", ATTACHMENTS_MAX_BYTES="1000", MAX_BODY_BYTES="2000")
    assert config.max_multipart_body_bytes == 3 * 1000 + 2000


def test_a_multipart_body_limit_too_small_for_the_attachments_is_a_config_error_naming_it():
    message = config_error(ATTACHMENTS_MAX_COUNT="3", ATTACHMENTS_MAX_BYTES="1000", MAX_MULTIPART_BODY_BYTES="2999")
    assert "MAX_MULTIPART_BODY_BYTES" in message and "3000" in message


def test_a_superscript_digit_id_is_a_config_error_naming_the_variable():
    assert "GLPI_CNPJ_FIELD_ID" in config_error(GLPI_CNPJ_FIELD_ID="²")


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "-inf", "10s"])
def test_a_bad_glpi_timeout_is_a_config_error_naming_it(value):
    assert "GLPI_TIMEOUT" in config_error(GLPI_TIMEOUT=value)


def test_cache_ttls_accept_zero_but_not_negative_values():
    assert config_with(GLPI_ENTITY_CACHE_TTL="0", GLPI_ENTITY_NEGATIVE_CACHE_TTL="0").glpi_entity_cache_ttl == 0
    assert "GLPI_ENTITY_CACHE_TTL" in config_error(GLPI_ENTITY_CACHE_TTL="-1")
    assert "GLPI_ENTITY_NEGATIVE_CACHE_TTL" in config_error(GLPI_ENTITY_NEGATIVE_CACHE_TTL="-0.5")
    assert config_with(HEALTH_CACHE_TTL="0").health_cache_ttl == 0
    assert "HEALTH_CACHE_TTL" in config_error(HEALTH_CACHE_TTL="-1")


@pytest.mark.parametrize("value, expected", [("", 900.0), ("60", 60.0), ("0.5", 0.5), ("0", 0.0)])
def test_health_queue_max_age_is_in_seconds_with_fifteen_minutes_by_default(value, expected):
    assert config_with(HEALTH_QUEUE_MAX_AGE=value).health_queue_max_age == expected


@pytest.mark.parametrize("value", ["-1", "abc", "nan", "inf", "15m"])
def test_a_bad_health_queue_max_age_is_a_config_error_naming_it(value):
    assert "HEALTH_QUEUE_MAX_AGE" in config_error(HEALTH_QUEUE_MAX_AGE=value)


@pytest.mark.parametrize("value", ["maybe", "2", "verdadeiro", "t"])
def test_a_glpi_verify_tls_that_is_not_a_boolean_is_a_config_error_naming_it(value):
    assert "GLPI_VERIFY_TLS" in config_error(GLPI_VERIFY_TLS=value)


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "True", "yes", "on", "sim", " Yes "])
def test_true_words_turn_tls_verification_on(value):
    assert config_with(GLPI_VERIFY_TLS=value).glpi_verify_tls is True


@pytest.mark.parametrize("value", ["0", "false", "FALSE", "False", "no", "off", "nao", "não", "NÃO"])
def test_false_words_turn_tls_verification_off(value):
    assert config_with(GLPI_VERIFY_TLS=value).glpi_verify_tls is False


def test_a_metrics_enabled_that_is_not_a_boolean_is_a_config_error_naming_it():
    assert "METRICS_ENABLED" in config_error(METRICS_ENABLED="talvez")


@pytest.mark.parametrize("value", ["verbose", "trace", "5", "INFOO"])
def test_an_unknown_log_level_is_a_config_error_naming_it(value):
    assert "LOG_LEVEL" in config_error(LOG_LEVEL=value)


@pytest.mark.parametrize(
    "value, expected", [("debug", "DEBUG"), ("Warning", "WARNING"), ("ERROR", "ERROR"), ("critical", "CRITICAL")]
)
def test_log_level_is_case_insensitive_and_upper_cased(value, expected):
    assert config_with(LOG_LEVEL=value).log_level == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("'self'", "'self'"),
        ("'none'", "'none'"),
        ("https://www.exemplo.com.br", "https://www.exemplo.com.br"),
        (" https://a.exemplo.com.br,  http://localhost:8080 ", "https://a.exemplo.com.br http://localhost:8080"),
        ("'self' https://*.exemplo.com.br", "'self' https://*.exemplo.com.br"),
    ],
)
def test_form_frame_ancestors_lists_origins_for_the_csp_header(value, expected):
    assert config_with(FORM_FRAME_ANCESTORS=value).form_frame_ancestors == expected


@pytest.mark.parametrize(
    "value",
    [
        "self",
        "https://a.com; script-src *",
        "'unsafe-inline'",
        "javascript:alert(1)",
        "https://a.com/caminho",
        "www.exemplo.com.br",
        "'none' https://a.com",
        "https://a.com\r\nX-Evil: 1",
    ],
)
def test_a_form_frame_ancestor_that_is_not_an_origin_is_a_config_error_naming_it(value):
    assert "FORM_FRAME_ANCESTORS" in config_error(FORM_FRAME_ANCESTORS=value)


# --- .env file ------------------------------------------------------------------


def test_dotenv_file_is_loaded_when_the_environment_does_not_set_the_variables(clean_environ, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "GLPI_URL=https://from-file.example.com/apirest.php\nGLPI_USER_TOKEN=file-token\nGLPI_TIMEOUT=5\n",
        encoding="utf-8",
    )
    config = load_config(environ=None, env_file=str(env_file))
    assert config.glpi_url == "https://from-file.example.com/apirest.php"
    assert config.glpi_user_token == "file-token"
    assert config.glpi_timeout == 5.0


def test_os_environ_wins_over_the_dotenv_file(clean_environ, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "GLPI_URL=https://from-file.example.com/apirest.php\nGLPI_USER_TOKEN=file-token\nGLPI_TIMEOUT=5\n",
        encoding="utf-8",
    )
    clean_environ.setenv("GLPI_USER_TOKEN", "environ-token")
    clean_environ.setenv("GLPI_TIMEOUT", "7")
    config = load_config(environ=None, env_file=str(env_file))
    assert config.glpi_user_token == "environ-token"
    assert config.glpi_timeout == 7.0
    assert config.glpi_url == "https://from-file.example.com/apirest.php"


def test_a_missing_dotenv_file_is_not_an_error(clean_environ, tmp_path):
    clean_environ.setenv("GLPI_URL", MINIMAL["GLPI_URL"])
    clean_environ.setenv("GLPI_USER_TOKEN", MINIMAL["GLPI_USER_TOKEN"])
    config = load_config(environ=None, env_file=str(tmp_path / "nao-existe.env"))
    assert config.glpi_url == MINIMAL["GLPI_URL"]


def test_dotenv_in_the_working_directory_is_loaded_by_default(clean_environ, tmp_path):
    (tmp_path / ".env").write_text("GLPI_URL=https://cwd.example.com\nGLPI_USER_TOKEN=cwd-token\n", encoding="utf-8")
    clean_environ.chdir(tmp_path)
    assert load_config().glpi_url == "https://cwd.example.com"


def test_an_explicit_environ_mapping_ignores_the_dotenv_file(clean_environ, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("GLPI_TIMEOUT=5\n", encoding="utf-8")
    assert load_config(dict(MINIMAL), env_file=str(env_file)).glpi_timeout == 10.0


def test_a_missing_variable_is_reported_even_with_a_dotenv_file(clean_environ, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("GLPI_URL=https://from-file.example.com\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="GLPI_USER_TOKEN"):
        load_config(environ=None, env_file=str(env_file))


# --- secrets --------------------------------------------------------------------


def test_repr_never_shows_the_tokens():
    config = config_with(GLPI_APP_TOKEN="app-token-secret-456")
    text = repr(config)
    assert "user-token-secret-123" not in text
    assert "app-token-secret-456" not in text
    assert "glpi_user_token='***'" in text
    assert "glpi_app_token='***'" in text
    assert "user-token-secret-123" not in str(config)
    assert "user-token-secret-123" not in f"{config}"


def test_repr_shows_the_non_secret_values():
    text = repr(config_with(GLPI_TIMEOUT="3"))
    assert "glpi_url='https://glpi.example.com/apirest.php'" in text
    assert "glpi_timeout=3.0" in text
    assert "glpi_app_token=None" in text


def test_secrets_returns_the_tokens():
    assert set(config_with(GLPI_APP_TOKEN="app-token-secret-456").secrets()) == {
        "user-token-secret-123",
        "app-token-secret-456",
    }


def test_secrets_leaves_out_an_unset_app_token():
    assert config_with().secrets() == ["user-token-secret-123"]


# --- access: API keys, CORS, limits -------------------------------------------------

SITE_KEY = "site-key-0123456789abcdefghijklmnopqrstuv"
ZABBIX_KEY = "zabbix:key:with:colons-0123456789abcdefgh"


def test_api_keys_are_name_key_pairs():
    config = config_with(API_KEYS=f" site-principal:{SITE_KEY} , zabbix_2:{ZABBIX_KEY},")
    assert config.api_keys == (("site-principal", SITE_KEY), ("zabbix_2", ZABBIX_KEY))


@pytest.mark.parametrize(
    "value",
    [
        SITE_KEY,  # no name
        f"Site:{SITE_KEY}",  # upper case name
        f"site principal:{SITE_KEY}",
        f":{SITE_KEY}",
        f"site:{SITE_KEY[:31]}",  # 31 characters
        f"site:{SITE_KEY[:20]} {SITE_KEY[20:]}",  # a space inside
        f"site:{SITE_KEY}é",
        f"site:{SITE_KEY},zabbix:{SITE_KEY}",  # the same key twice
        f"site:{SITE_KEY},site:{ZABBIX_KEY}",  # the same name twice
    ],
)
def test_a_bad_api_keys_entry_is_a_config_error_naming_the_variable_but_never_a_key(value):
    message = config_error(API_KEYS=value)
    assert "API_KEYS" in message
    assert SITE_KEY[:20] not in message and ZABBIX_KEY not in message


def test_api_keys_are_masked_in_repr_and_listed_as_secrets():
    config = config_with(API_KEYS=f"site:{SITE_KEY}", REDIS_URL="redis://:redis-password-1@127.0.0.1:6379/0")
    assert SITE_KEY not in repr(config) and "redis-password-1" not in repr(config)
    assert "'site'" in repr(config)
    assert SITE_KEY in config.secrets() and "redis-password-1" in config.secrets()


def test_form_api_key_name_picks_the_key_the_form_publishes():
    config = config_with(API_KEYS=f"site:{SITE_KEY},formulario:{ZABBIX_KEY}", FORM_API_KEY_NAME=" formulario ")
    assert config.form_api_key_name == "formulario" and config.form_api_key == ZABBIX_KEY
    assert ZABBIX_KEY in config.secrets()  # public in the form, yet still masked in the logs
    unset = config_with(API_KEYS=f"site:{SITE_KEY}")
    assert unset.form_api_key_name is None and unset.form_api_key is None


@pytest.mark.parametrize("value", ["formulario", "Site", SITE_KEY, "zabbix:key:with:colons"])
def test_a_form_api_key_name_not_in_api_keys_is_a_config_error_naming_it_and_the_known_names(value):
    message = config_error(API_KEYS=f"site:{SITE_KEY},zabbix:{ZABBIX_KEY}", FORM_API_KEY_NAME=value)
    assert message.startswith("FORM_API_KEY_NAME")
    assert SITE_KEY[:20] not in message and ZABBIX_KEY not in message
    if value == SITE_KEY:
        assert "não a própria chave" in message
    else:
        assert "site, zabbix" in message


def test_a_form_api_key_name_without_api_keys_is_a_config_error_naming_both():
    message = config_error(FORM_API_KEY_NAME="formulario")
    assert "FORM_API_KEY_NAME" in message and "API_KEYS" in message


def test_cors_origins_are_exact_lower_cased_origins():
    config = config_with(CORS_ORIGINS="https://WWW.Exemplo.com.br, http://localhost:8080")
    assert config.cors_origins == ("https://www.exemplo.com.br", "http://localhost:8080")


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://*.exemplo.com.br",
        "www.exemplo.com.br",
        "https://exemplo.com.br/",
        "https://a.br/form",
        "ftp://exemplo.com.br",
        "https://user@exemplo.com.br",
        "null",
    ],
)
def test_a_cors_origin_that_is_not_an_exact_origin_is_a_config_error_naming_it(value):
    assert "CORS_ORIGINS" in config_error(CORS_ORIGINS=value)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("20/hour", RateLimit(20, 3600)),
        ("600/minute", RateLimit(600, 60)),
        ("10/second", RateLimit(10, 1)),
        (" 5 / Day ", RateLimit(5, 86400)),
    ],
)
def test_rate_limits_read_count_per_period(value, expected):
    config = config_with(RATE_LIMIT_PER_IP=value, RATE_LIMIT_PER_KEY=value, API_KEYS=f"site:{SITE_KEY}")
    assert config.rate_limit_per_ip == config.rate_limit_per_key == expected
    assert str(expected) == value.replace(" ", "").lower()


@pytest.mark.parametrize("value", ["20", "20/hours", "0/hour", "-1/minute", "1.5/second", "hour", "20/h"])
def test_a_bad_rate_limit_is_a_config_error_naming_it(value):
    assert "RATE_LIMIT_PER_IP" in config_error(RATE_LIMIT_PER_IP=value)


def test_a_per_key_limit_without_keys_is_a_config_error():
    assert "RATE_LIMIT_PER_KEY" in config_error(RATE_LIMIT_PER_KEY="10/minute")


def test_trusted_proxies_are_addresses_or_networks():
    config = config_with(TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8,::1")
    assert config.trusted_proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert "TRUSTED_PROXIES" in config_error(TRUSTED_PROXIES="proxy.local")


def test_data_dir_and_redis_url_are_read():
    config = config_with(DATA_DIR="/var/lib/gateway", REDIS_URL="redis://127.0.0.1:6379/2")
    assert (config.data_dir, config.redis_url) == ("/var/lib/gateway", "redis://127.0.0.1:6379/2")


@pytest.mark.parametrize("value", ["cache.interno:6380", "http://cache.interno:6380", "redis://"])
def test_a_redis_url_that_is_not_redis_is_a_config_error_without_echoing_it(value):
    message = config_error(REDIS_URL=value)
    assert "REDIS_URL" in message and "cache.interno" not in message


# --- reliability settings ---------------------------------------------------------


def test_reliability_settings_have_safe_defaults():
    config = config_with()
    assert (config.data_dir, config.redis_url, config.redis_key_prefix) == ("./data", None, "glpi-gateway:")
    assert (config.idempotency_ttl, config.queue_when_unavailable, config.queue_retry_max_seconds) == (
        86400.0,
        True,
        300.0,
    )


def test_reliability_settings_are_read():
    config = config_with(
        DATA_DIR="/var/lib/gw",
        REDIS_URL="redis://:senha-redis@cache:6379/2",
        REDIS_KEY_PREFIX="gw2:",
        IDEMPOTENCY_TTL="3600",
        QUEUE_WHEN_UNAVAILABLE="false",
        QUEUE_RETRY_MAX_SECONDS="60",
    )
    assert (
        config.data_dir,
        config.redis_url,
        config.redis_key_prefix,
        config.idempotency_ttl,
        config.queue_when_unavailable,
        config.queue_retry_max_seconds,
    ) == ("/var/lib/gw", "redis://:senha-redis@cache:6379/2", "gw2:", 3600.0, False, 60.0)


def test_redis_url_is_a_secret_it_may_carry_a_password():
    config = config_with(REDIS_URL="redis://:senha-redis@cache:6379/2")
    assert "senha-redis" not in repr(config)
    assert "redis://:senha-redis@cache:6379/2" in config.secrets()


@pytest.mark.parametrize(
    "name, value",
    [
        ("REDIS_URL", "http://cache:6379"),
        ("REDIS_URL", "cache:6379"),
        ("IDEMPOTENCY_TTL", "0"),
        ("QUEUE_WHEN_UNAVAILABLE", "talvez"),
        ("QUEUE_RETRY_MAX_SECONDS", "-1"),
        ("DEDUPE_WINDOW_SECONDS", "-1"),
        ("DEDUPE_WINDOW_SECONDS", "dez minutos"),
    ],
)
def test_invalid_reliability_settings_name_the_variable(name, value):
    message = config_error(**{name: value})
    assert name in message
    if name == "REDIS_URL":
        assert value not in message  # it could hold a password


@pytest.mark.parametrize("value, window", [(None, 600.0), ("0", 0.0), ("60", 60.0)])
def test_the_dedupe_window_defaults_to_ten_minutes_and_zero_turns_it_off(value, window):
    settings = {} if value is None else {"DEDUPE_WINDOW_SECONDS": value}
    assert config_with(**settings).dedupe_window_seconds == window


def test_the_form_challenge_defaults_to_sixteen_bits_for_half_an_hour():
    config = config_with()
    assert (config.form_challenge_difficulty, config.form_challenge_ttl) == (16, 1800)


@pytest.mark.parametrize(
    "name, value",
    [("FORM_CHALLENGE_DIFFICULTY", "29"), ("FORM_CHALLENGE_DIFFICULTY", "-1"), ("FORM_CHALLENGE_TTL", "59")],
)
def test_form_challenge_settings_out_of_range_name_the_variable(name, value):
    assert name in config_error(**{name: value})
