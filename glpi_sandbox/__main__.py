"""`python -m glpi_sandbox`: serve the sandbox until Ctrl-C or SIGTERM (`--help` lists the options)."""

from __future__ import annotations

import argparse
import signal
import threading

from .api import API_PREFIX, CONTROL_PREFIX
from .sandbox import GlpiSandbox
from .searchoptions import FIELDS_OPTION_ID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m glpi_sandbox",  # not "__main__.py"
        description="A GLPI legacy REST API (apirest.php) stand-in with demo data.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every API call")
    parser.add_argument("--glpi-version", type=int, choices=(10, 11), default=10)
    parser.add_argument("--app-token", default="sandbox-app-token")
    parser.add_argument("--no-app-token", action="store_true", help="an API client without App-Token")
    parser.add_argument("--user-token", default="sandbox-user-token", help="API token of user 7 (api)")
    parser.add_argument("--seed", choices=("demo", "lab"), default="demo")
    parser.add_argument("--session-max-idle", type=float, help="seconds after which an idle session dies")
    parser.add_argument("--api-disabled", action="store_true", help='answer every call ["ERROR", "API disabled"]')
    parser.add_argument(
        "--allowed-ip", action="append", help="an address an API client accepts (repeatable; default: any)"
    )
    parser.add_argument(
        "--drop-authorization",
        action="store_true",
        help="ignore the Authorization header, as some Apache/FastCGI set-ups do",
    )
    parser.add_argument(
        "--no-fields-option",
        action="store_true",
        help="no Fields-plugin CNPJ option on Entity (profile without rights on the container)",
    )
    args = parser.parse_args(argv)

    # Handlers first: whoever sees the banner or a served request may send SIGTERM at once.
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    sandbox = GlpiSandbox(
        app_token=None if args.no_app_token else args.app_token,
        user_tokens={args.user_token: 7},
        version=args.glpi_version,
        latency_ms=args.latency_ms,
        session_max_idle=args.session_max_idle,
        seed=args.seed,
        fields_option_id=None if args.no_fields_option else FIELDS_OPTION_ID,
        api_enabled=not args.api_disabled,
        allowed_ips=set(args.allowed_ip) if args.allowed_ip else None,
        drops_authorization=args.drop_authorization,
    )
    url = sandbox.start(args.host, args.port)
    origin = url[: -len(API_PREFIX)]
    print(f"GLPI {args.glpi_version} sandbox listening on {url}", flush=True)
    print(f"  App-Token:  {sandbox.app_token or '(none: the API client has no App-Token)'}", flush=True)
    print(f"  user_token: {args.user_token} (user 7, api)", flush=True)
    print(f"  control:    {origin}{CONTROL_PREFIX}stats    (Ctrl-C to stop)", flush=True)

    stop.wait()
    sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
