"""`python app.py fila <comando>`: the delivery queue for the person on call, in Portuguese.

listar (list), mostrar (show), reenviar (retry), cancelar (cancel) and exportar (export, JSON
lines). It opens the store from the gateway's own variables (DATA_DIR, or REDIS_URL and
REDIS_KEY_PREFIX; config.load_store_settings) and changes it only through the store's atomic
operations, so it is safe while gateways run. Reenviar and cancelar write a log line (JSON, on
stderr, like the gateway's) naming the operating-system user.

Exit status: 0 done; 1 nothing done (unknown protocol, a state that does not allow it, a
cancellation not confirmed); 2 wrong usage; 3 the store could not be opened or read.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

from config import ConfigError, StoreSettings, load_store_settings
from glpi_gateway.delivery import PROTOCOL_PATTERN, ComplementJob, decode_job
from glpi_gateway.errors import UNAVAILABLE_DETAILS
from glpi_gateway.follow import complement_message, glpi_text
from glpi_gateway.logging_setup import configure_logging
from glpi_gateway.store import (
    CANCELLED,
    CREATED,
    FAILED,
    QUEUED,
    SQLITE_FILE,
    STATES,
    QueuedTicket,
    Store,
    StoreUnavailable,
    open_store,
)
from glpi_gateway.ticket_format import COMPLEMENT_ID_PATTERN
from glpi_gateway.web.follow import status_answer

log = logging.getLogger(__name__)

DONE, NOTHING_DONE, USAGE, STORE_FAILED = 0, 1, 2, 3
DEFAULT_CANCEL_REASON = "cancelado pela equipe de operação"
PROTOCOL_HELP = "o «protocolo» da resposta 202 (ou o caminho /chamados/<protocolo> do Location)"
YES_WORDS = frozenset({"s", "sim", "y", "yes"})
STATE_WORDS = {  # how many are in each state: singular, plural
    QUEUED: ("enfileirado", "enfileirados"),
    CREATED: ("criado", "criados"),
    FAILED: ("falhou", "falharam"),
    CANCELLED: ("cancelado", "cancelados"),
}


class QueueCommandError(Exception):
    """Ends the command with a message for the person on call and an exit status."""

    def __init__(self, message: str, status: int = NOTHING_DONE):
        super().__init__(message)
        self.status = status


def main(
    argv: Sequence[str],
    environ: dict[str, str] | None = None,
    ask: Callable[[str], str] = input,
    clock: Callable[[], float] = time.time,
) -> int:
    """Run one command; `environ` (default: os.environ plus .env) and `ask` (a yes/no question) for tests."""
    args = _parser().parse_args(list(argv))
    try:
        settings = load_store_settings(environ)
    except ConfigError as error:
        return _fail(f"configuração inválida: {error}", STORE_FAILED)
    configure_logging(settings.log_level, settings.secrets())
    try:
        store = _open(settings)
    except QueueCommandError as error:
        return _fail(_masked(str(error), settings), error.status)
    try:
        command = Command(store, settings, clock, ask)
        return getattr(command, args.command)(args)
    except QueueCommandError as error:
        return _fail(_masked(str(error), settings), error.status)
    except StoreUnavailable as error:
        return _fail(_masked(f"o armazenamento não respondeu: {error}", settings), STORE_FAILED)
    finally:
        store.close()


class _PortugueseHelp(argparse.HelpFormatter):
    def add_usage(
        self,
        usage: str | None,
        actions: Iterable[argparse.Action],
        groups: Iterable[argparse._MutuallyExclusiveGroup],
        prefix: str | None = None,
    ) -> None:
        super().add_usage(usage, actions, groups, prefix="uso: " if prefix is None else prefix)


# argparse's own messages, which it writes in English.
_ARGPARSE_MESSAGES = (
    (re.compile(r"the following arguments are required: (.*)"), r"falta informar: \1"),
    (re.compile(r"argument (\S+): invalid choice: (.*) \(choose from (.*)\)"), r"\1: \2 não é uma opção (use \3)"),
    (re.compile(r"argument (\S+): expected one argument"), r"\1 precisa de um valor"),
    (re.compile(r"unrecognized arguments: (.*)"), r"argumentos desconhecidos: \1"),
)


class _Parser(argparse.ArgumentParser):
    """argparse in Portuguese: help, titles and the usual errors."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(formatter_class=_PortugueseHelp, add_help=False, **kwargs)
        self._positionals.title = "argumentos"
        self._optionals.title = "opções"
        self.add_argument("-h", "--help", action="help", help="mostra esta ajuda e sai")

    def error(self, message: str) -> NoReturn:
        for pattern, replacement in _ARGPARSE_MESSAGES:
            message = pattern.sub(replacement, message)
        self.print_usage(sys.stderr)
        self.exit(USAGE, f"Erro: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python app.py fila",
        description="A fila de entrega ao GLPI: pedidos respondidos com 202 que esperam, falharam ou foram "
        "cancelados. Lê o mesmo DATA_DIR ou REDIS_URL do gateway; pode rodar com o gateway no ar.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="comando", parser_class=_Parser)

    listing = commands.add_parser("listar", aliases=["list"], help="lista os pedidos da fila, do mais antigo")
    _state_filters(listing)
    listing.set_defaults(command="list_tickets")

    show = commands.add_parser("mostrar", aliases=["show"], help="mostra um pedido por inteiro")
    show.add_argument("protocolo", help=PROTOCOL_HELP)
    show.set_defaults(command="show")

    retry = commands.add_parser(
        "reenviar",
        aliases=["retry"],
        help="põe um pedido que falhou (ou foi cancelado) de volta na fila, ou adianta um enfileirado: é tentado agora",
    )
    retry.add_argument("protocolo", help=PROTOCOL_HELP)
    retry.set_defaults(command="retry")

    cancel = commands.add_parser(
        "cancelar", aliases=["cancel"], help="tira um pedido enfileirado da fila: ele não será entregue ao GLPI"
    )
    cancel.add_argument("protocolo", help=PROTOCOL_HELP)
    cancel.add_argument("--sim", "--yes", "-y", action="store_true", dest="yes", help="não pede confirmação")
    cancel.add_argument(
        "--motivo", default=DEFAULT_CANCEL_REASON, help=f"o motivo que o cliente vê (padrão: «{DEFAULT_CANCEL_REASON}»)"
    )
    cancel.set_defaults(command="cancel")

    export = commands.add_parser(
        "exportar", aliases=["export"], help="um objeto JSON por linha com tudo de cada pedido (inclusive o pedido)"
    )
    _state_filters(export)
    export.set_defaults(command="export")
    return parser


def _state_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--estado", action="append", choices=STATES, help="só pedidos neste estado (pode repetir); padrão: todos"
    )
    parser.add_argument(
        "--pendentes", action="append_const", const=QUEUED, dest="estado", help="= --estado enfileirado"
    )
    parser.add_argument("--falhos", action="append_const", const=FAILED, dest="estado", help="= --estado falhou")


def _open(settings: StoreSettings) -> Store:
    if not settings.redis_url:
        path = os.path.join(settings.data_dir, SQLITE_FILE)
        if not os.path.isfile(path):  # opening would create an empty store and show nothing: say so instead
            raise QueueCommandError(
                f"não há fila em DATA_DIR={settings.data_dir!r} (falta o arquivo {SQLITE_FILE}): rode o comando no "
                "mesmo diretório e com o mesmo DATA_DIR (ou REDIS_URL) do gateway",
                STORE_FAILED,
            )
    variable = "REDIS_URL" if settings.redis_url else "DATA_DIR"
    try:
        return open_store(settings.data_dir, settings.redis_url, settings.redis_key_prefix)
    except (StoreUnavailable, OSError) as error:
        raise QueueCommandError(
            f"{variable}: não foi possível abrir o armazenamento ({error})", STORE_FAILED
        ) from error


class Command:
    def __init__(self, store: Store, settings: StoreSettings, clock: Callable[[], float], ask: Callable[[str], str]):
        self._store = store
        self._settings = settings
        self._clock = clock
        self._ask = ask

    def list_tickets(self, args: argparse.Namespace) -> int:
        tickets = self._store.list_tickets(args.estado)
        if not tickets:
            which = " ou ".join(args.estado) if args.estado else ""
            print(f"Nenhum pedido {which} na fila.".replace("  ", " "))
            return DONE
        now = self._clock()
        rows = [("PROTOCOLO", "ESTADO", "IDADE", "TENT.", "ÚLTIMO MOTIVO")]
        rows += [
            (
                ticket.protocol,
                ticket.state,
                _duration(now - ticket.created_at),
                str(ticket.attempts),
                _last_reason(ticket, now),
            )
            for ticket in tickets
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        for row in rows:
            print(
                (
                    "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4]
                ).rstrip()
            )
        counts = {state: sum(ticket.state == state for ticket in tickets) for state in STATES}
        summary = ", ".join(f"{count} {STATE_WORDS[state][count > 1]}" for state, count in counts.items() if count)
        print(f"\n{_count(len(tickets), 'pedido', 'pedidos')}: {summary}")
        return DONE

    def show(self, args: argparse.Namespace) -> int:
        ticket = self._find(args.protocolo)
        now = self._clock()
        lines = [
            ("Protocolo", ticket.protocol),
            ("Estado", ticket.state),
            ("Recebido em", f"{_when(ticket.created_at)} (há {_duration(now - ticket.created_at)})"),
            ("Tentativas", str(ticket.attempts)),
        ]
        reason = _last_reason(ticket, now)
        if reason:
            lines.append(("Último motivo", reason))
        if ticket.state == QUEUED:
            due = ticket.next_attempt_at - now
            lines.append(
                ("Próxima tentativa", "agora" if due <= 0 else f"{_when(ticket.next_attempt_at)} (em {_duration(due)})")
            )
        if ticket.maybe_sent and ticket.state != CREATED:
            lines.append(
                (
                    "Pode estar no GLPI",
                    "sim: uma tentativa pode ter chegado lá; a entrega procura o protocolo antes de reenviar",
                )
            )
        fields = _request_fields(ticket)
        width = max(len(name) for name in [label for label, _ in lines] + [f"  {name}" for name in fields]) + 2
        for label, value in [*lines, ("Pedido", "")]:
            print(f"{label + ':':<{width}}{value}".rstrip())
        for name, value in fields.items():
            print(f"{'  ' + name + ':':<{width}}" + str(value).replace("\n", "\n" + " " * width))
        return DONE

    def retry(self, args: argparse.Namespace) -> int:
        before = self._find(args.protocolo)
        if before.state == CREATED:
            raise QueueCommandError(
                f"o pedido {before.protocol} já virou o chamado {before.ticket_id} no GLPI: não há o que reenviar"
            )
        after = self._store.retry_ticket(before.protocol)
        if after is None:
            raise QueueCommandError(_unknown(before.protocol))
        if after.state != QUEUED:  # delivered in between
            raise QueueCommandError(f"o pedido {after.protocol} saiu da fila enquanto isso: está {after.state}")
        user = _operating_system_user()
        log.info(
            "pedido %s reenviado por %s com python app.py fila reenviar (estava %s)",
            after.protocol,
            user,
            before.state,
            extra={"event": "fila_reenviado", "protocolo": after.protocol, "usuario": user},
        )
        waiting = [queued.protocol for queued in self._store.list_tickets([QUEUED])]
        ahead = waiting.index(after.protocol) if after.protocol in waiting else 0
        if before.state == QUEUED:
            print(f"Pedido {after.protocol}: a próxima tentativa foi adiantada para agora.")
        else:
            print(f"Pedido {after.protocol} de volta à fila (estava {before.state}).")
        if ahead:
            print(f"A fila é entregue em ordem de chegada: {_count(ahead, 'pedido', 'pedidos')} à frente dele.")
        print(f"Acompanhe com: python app.py fila mostrar {after.protocol}")
        return DONE

    def cancel(self, args: argparse.Namespace) -> int:
        ticket = self._find(args.protocolo)
        if ticket.state != QUEUED:
            raise QueueCommandError(
                f"o pedido {ticket.protocol} não está enfileirado (está {ticket.state}): só se cancela um pedido "
                "que ainda espera a entrega"
            )
        name = _request_fields(ticket).get("nome_cliente", "?")
        if not args.yes:
            question = (
                f"Cancelar o pedido {ticket.protocol} de {name}, recebido há "
                f"{_duration(self._clock() - ticket.created_at)}? Ele não será entregue ao GLPI. [s/N] "
            )
            try:
                answer = self._ask(question)
            except EOFError:
                answer = ""
            if answer.strip().lower() not in YES_WORDS:
                raise QueueCommandError("nada cancelado")
        user = _operating_system_user()
        now = self._clock()
        reason = {"motivo": args.motivo, "cancelado_em": _iso(now), "cancelado_por": user}
        after = self._store.cancel_ticket(
            ticket.protocol, json.dumps(reason, ensure_ascii=False), self._settings.idempotency_ttl
        )
        if after is None or after.state != CANCELLED:
            state = "sumiu" if after is None else f"está {after.state}"
            raise QueueCommandError(f"o pedido {ticket.protocol} saiu da fila antes do cancelamento: {state}")
        log.warning(
            "pedido %s cancelado por %s com python app.py fila cancelar: %s",
            ticket.protocol,
            user,
            args.motivo,
            extra={"event": "fila_cancelado", "protocolo": ticket.protocol, "usuario": user},
        )
        print(f"Pedido {ticket.protocol} cancelado: não será entregue ao GLPI.")
        if after.maybe_sent:
            print(
                "Atenção: uma tentativa de entrega pode ter chegado ao GLPI (ou estar chegando agora). Procure no GLPI "
                f"um chamado com a linha «Protocolo: {ticket.protocol}» e confira daqui a pouco com: "
                f"python app.py fila mostrar {ticket.protocol}"
            )
        return DONE

    def export(self, args: argparse.Namespace) -> int:
        for ticket in self._store.list_tickets(args.estado):
            print(json.dumps(_exported(ticket), ensure_ascii=False))
        return DONE

    def _find(self, text: str) -> QueuedTicket:
        protocol = text.strip().rstrip("/").rsplit("/", 1)[-1].lower()  # the Location (/chamados/<protocolo>) works too
        if not (PROTOCOL_PATTERN.fullmatch(protocol) or COMPLEMENT_ID_PATTERN.fullmatch(protocol)):
            raise QueueCommandError(
                f"protocolo inválido: {text!r} (são 32 caracteres hexadecimais, como no «protocolo» da resposta 202)"
            )
        ticket = self._store.ticket(protocol)
        if ticket is None:
            raise QueueCommandError(_unknown(protocol))
        return ticket


def _unknown(protocol: str) -> str:
    return (
        f"protocolo desconhecido: {protocol} (nunca passou pela fila, ou terminou há mais de IDEMPOTENCY_TTL; "
        "pedidos respondidos com 201 não passam pela fila)"
    )


def _last_reason(ticket: QueuedTicket, now: float) -> str:
    if ticket.state == CREATED:
        return f"chamado {ticket.ticket_id}"
    if ticket.state == QUEUED:
        if not ticket.reason:
            return ""
        detail = UNAVAILABLE_DETAILS.get(ticket.reason)
        return f"{ticket.reason} ({detail})" if detail else ticket.reason
    reason = _json_object(ticket.reason)
    if ticket.state == CANCELLED:
        by = (
            f" (por {reason['cancelado_por']} em {reason.get('cancelado_em', '?')})"
            if "cancelado_por" in reason
            else ""
        )
        return f"{reason.get('motivo', '')}{by}"
    return f"{reason.get('codigo', '?')}: {reason.get('motivo', '')}"


def _exported(ticket: QueuedTicket) -> dict[str, Any]:
    """What GET /chamados/<protocolo> shows (status_answer), and what only the store knows."""
    exported = status_answer(ticket)
    if ticket.state == CANCELLED:
        exported["cancelado_por"] = _json_object(ticket.reason).get("cancelado_por")
    exported.update(
        tentativas=ticket.attempts,
        proxima_tentativa_em=_iso(ticket.next_attempt_at) if ticket.state == QUEUED else None,
        pode_estar_no_glpi=ticket.maybe_sent,
        pedido=_request_fields(ticket),
    )
    return exported


def _request_fields(ticket: QueuedTicket) -> dict[str, Any]:
    """The queued request as it was validated, its files named (their bytes stay in the store); an
    unreadable one as its raw text."""
    try:
        job = decode_job(ticket.payload)
    except (ValueError, TypeError):
        return {"ilegivel": ticket.payload}
    if isinstance(job, ComplementJob):
        fields: dict[str, Any] = {"complemento_do_protocolo": job.protocol, "autor": job.author}
        fields["mensagem"] = complement_message(glpi_text(job.content))
    else:
        fields = {name: value for name, value in vars(job.request).items() if value is not None}
        if job.ticket_id is not None:
            fields["chamado_ja_criado"] = job.ticket_id
    if job.files:
        fields["anexos"] = [f"{queued.filename} ({queued.size} bytes, {queued.mime})" for queued in job.files]
    return fields


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"motivo": text}
    return value if isinstance(value, dict) else {"motivo": text}


def _count(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _operating_system_user() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry nor LOGNAME/USER
        user = f"uid {os.getuid()}"
    sudo_user = os.environ.get("SUDO_USER")
    return f"{user} (sudo de {sudo_user})" if sudo_user and sudo_user != user else user


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _duration(seconds: float) -> str:
    """`45 s`, `12 min 5 s`, `3 h 4 min`, `2 d 5 h`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _masked(text: str, settings: StoreSettings) -> str:
    for secret in settings.secrets():
        text = text.replace(secret, "***")
    return text


def _fail(message: str, status: int) -> int:
    print(f"Erro: {message}", file=sys.stderr)
    return status
