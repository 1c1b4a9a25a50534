"""The composition root: `create_app()` builds the gateway from the environment (config.py).

Run with `gunicorn "app:create_app()"` (configured by gunicorn.conf.py and env) or
`python app.py` for a local server; `python app.py doctor [--cnpj X]` diagnoses the
configuration and the GLPI behind it (glpi_gateway/doctor.py); `python app.py fila <comando>`
lists, shows, retries, cancels and exports the delivery queue (glpi_gateway/queue_cli.py).
"""

from __future__ import annotations

import os
import sys
from functools import partial

from flask import Flask

from config import Config, ConfigError, load_config
from glpi_client import GlpiClient
from glpi_gateway.attachments import UploadSlots
from glpi_gateway.auth import ApiKeys
from glpi_gateway.challenge import FormChallenge, challenge_secret
from glpi_gateway.cors import CorsPolicy
from glpi_gateway.delivery import DeliveryWorker, queue_backlog
from glpi_gateway.health import Readiness
from glpi_gateway.logging_setup import configure_logging
from glpi_gateway.metrics import GatewayMetrics
from glpi_gateway.ratelimit import RateLimiter
from glpi_gateway.store import RATE_LIMIT_STORE_TIMEOUT, Store, StoreUnavailable, open_store
from glpi_gateway.tickets import TicketGateway
from glpi_gateway.web import EXTENSION, Services, services
from glpi_gateway.web.access import register_access_hooks, warn_about_access
from glpi_gateway.web.context import count_glpi_call, log_context, register_request_context
from glpi_gateway.web.errors import register_error_answers
from glpi_gateway.web.follow import register_follow_routes
from glpi_gateway.web.form import form_blueprint
from glpi_gateway.web.observe import count_delivery, register_metrics
from glpi_gateway.web.routes import register_routes
from glpi_gateway.web.tickets import register_idempotency_hook, register_ticket_routes

# How long `python app.py` waits for the delivery under way when it stops (gunicorn.conf.py has its own).
LOCAL_STOP_SECONDS = 30


def create_app(config: Config | None = None, glpi_client: GlpiClient | None = None) -> Flask:
    config = config or load_config()
    configure_logging(config.log_level, config.secrets(), context=log_context)
    store = _open_store(config)
    backlog = partial(queue_backlog, store)
    metrics = GatewayMetrics(queue_backlog=backlog)
    client = glpi_client or GlpiClient.from_config(config, observer=partial(_observe_glpi_call, metrics))
    gateway = TicketGateway(config, client, entity_cache_observer=metrics.entity_cache_lookup)
    gateway.check_setup_at_start()
    readiness = Readiness(gateway, client, config.health_cache_ttl, backlog, config.health_queue_max_age)
    warn_about_access(config)
    limiter = None
    if config.rate_limit_per_ip or config.rate_limit_per_key:
        limiter = RateLimiter(
            _open_store(config, timeout=RATE_LIMIT_STORE_TIMEOUT),
            config.rate_limit_per_ip,
            config.rate_limit_per_key,
            unchecked=metrics.rate_limit_unchecked,
            ipv6_prefix=config.rate_limit_ipv6_prefix,
        )

    app = Flask(__name__, static_folder=None)
    # A path with "//" is not redirected to its merged form: Werkzeug would answer that 308 in HTML
    # with a Location built from the client's Host header. It is an unknown route (404, JSON).
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = Services(
        glpi_client=client,
        gateway=gateway,
        store=store,
        delivery_worker=DeliveryWorker(
            store,
            gateway,
            retry_max_seconds=config.queue_retry_max_seconds,
            final_ttl=config.idempotency_ttl,
            observer=partial(count_delivery, metrics),
            protocol_ttl=config.protocol_ttl_seconds,
        ),
    )
    # Registration order is execution order for before-request hooks and the reverse for
    # after-request ones: the context exists before the access checks read it, and the
    # log line (registered first) is written last, after the counters and the key settled.
    register_request_context(app, config.trusted_proxies)
    challenge = FormChallenge(
        challenge_secret(config.api_keys), config.form_challenge_difficulty, config.form_challenge_ttl, store
    )
    register_access_hooks(
        app, CorsPolicy(config.cors_origins), ApiKeys(config.api_keys), limiter, config.form_api_key_name, challenge
    )
    register_idempotency_hook(app, store, config)
    register_routes(app, readiness, config)
    # One budget of multipart requests in flight, shared by new tickets and complements.
    upload_slots = UploadSlots(config.multipart_max_in_flight)
    register_ticket_routes(app, gateway, store, config, upload_slots)
    register_follow_routes(app, gateway, store, config, upload_slots)
    register_metrics(app, metrics, config.metrics_enabled)
    app.register_blueprint(form_blueprint(config, challenge))
    register_error_answers(app)
    return app


def _open_store(config: Config, timeout: float | None = None) -> Store:
    try:
        return open_store(config.data_dir, config.redis_url, config.redis_key_prefix, timeout)
    except (StoreUnavailable, OSError) as error:
        variable = "REDIS_URL" if config.redis_url else "DATA_DIR"
        raise ConfigError(
            f"{variable}: não foi possível abrir o armazenamento (fila, chaves, limites) ({error})"
        ) from error


def _observe_glpi_call(metrics: GatewayMetrics, method: str, endpoint: str, status: int, elapsed: float) -> None:
    metrics.glpi_call(method, endpoint, elapsed)
    count_glpi_call()


def main(argv: list[str]) -> int:
    if argv[:1] == ["doctor"]:
        from glpi_gateway.doctor import main as doctor_main  # the CLI only: workers never import it

        return doctor_main(argv[1:])
    if argv[:1] == ["fila"]:
        from glpi_gateway.queue_cli import main as queue_main  # the CLI only: workers never import it

        return queue_main(argv[1:])
    application = create_app()
    served = services(application)
    served.start()
    try:
        application.run(
            host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), threaded=True
        )
    finally:
        served.stop(timeout=LOCAL_STOP_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
