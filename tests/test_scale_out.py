"""Scale-out: two gateways (real gunicorn, two workers each) on one Redis, over HTTP on loopback.

Concurrent clients spread a few hundred tickets over both; GLPI (the sandbox) is down for part of
the run; once it is back, the gateway holding the delivery lease is SIGKILLed in the middle of
draining the queue, with requests in flight, and started again. Every request answered 201 or 202
must end as exactly one ticket in GLPI (matched by the protocol line each ticket carries); the
queue must drain through whichever gateway is alive; an Idempotency-Key used on one gateway must
replay on the other, and a per-IP limit must count the requests to both.

The figures are printed (run with -s to see them) and reported in docs/garantias.md.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import redis
import requests

from glpi_gateway.store.redis import RedisStore
from tests.harness import sandbox_settings

CLIENTS = 16  # concurrent clients
BEFORE_OUTAGE, DURING_OUTAGE, AFTER_OUTAGE = 100, 100, 100  # tickets sent in each phase
AFTER_OUTAGE_PER_SECOND = 30  # the last phase is paced, so that requests are in flight when the kill comes
# The kill comes once half of the last phase is sent and the queue has begun to drain.
KILL_AFTER_SENT = AFTER_OUTAGE // 2
GLPI_LATENCY_MS = 80  # from GLPI's return to the kill: deliveries and requests under way when it comes
RATE_LIMIT = 6  # per client IP and hour, counted in Redis for both gateways
RACING = 8  # requests with one Idempotency-Key sent at once, half to each gateway
DRAIN_DEADLINE = 45.0  # bounded: a queue that does not drain by then fails the test
PROTOCOL_LINE = re.compile(r"Protocolo:&#60;/strong&#62; ([0-9a-f]{32})")  # as GLPI 10 stores the ticket


def ticket_body(number: int) -> dict:
    return {
        "nome_cliente": "Maria Souza",
        "telefone_cliente": "(11) 99999-0000",
        "cnpj_cliente": "11.222.333/0001-81",
        "anydesk_cliente": "123 456 789",
        "descricao_problema": f"Carga em duas instâncias, pedido {number}.",
    }


@dataclass
class Sent:
    """One ticket request of the load, as its client saw it."""

    number: int
    key: str
    client_ip: str
    gateway: str = ""  # URL of the gateway that answered (or was asked last)
    status: int | None = None  # None: no answer (the gateway was killed under it)
    body: dict = field(default_factory=dict)
    cut: bool = False  # killed under it, and still held by the dead request when retried on another (409)
    retried: bool = False  # sent again on another gateway after a connection error


class Gateways:
    """The gateways the clients may use now: round-robin, and a killed one taken out."""

    def __init__(self, *processes):
        self._lock = threading.Lock()
        self._processes = list(processes)
        self._turn = 0

    def pick(self, avoid: str | None = None):
        with self._lock:
            choices = [process for process in self._processes if process.url != avoid] or self._processes
            self._turn += 1
            return choices[self._turn % len(choices)]

    def replace(self, old, new) -> None:
        with self._lock:
            self._processes = [new if process is old else process for process in self._processes]

    def remove(self, old) -> None:
        with self._lock:
            self._processes = [process for process in self._processes if process is not old]

    def add(self, new) -> None:
        with self._lock:
            self._processes.append(new)


def post(url: str, sent: Sent, headers: dict | None = None) -> requests.Response:
    return requests.post(
        f"{url}/criar-chamado",
        json=ticket_body(sent.number),
        headers={
            "Idempotency-Key": sent.key,
            "X-Forwarded-For": sent.client_ip,
            "Connection": "close",
            **(headers or {}),
        },
        timeout=30,
    )


def send(gateways: Gateways, sent: Sent) -> Sent:
    """A client: one request; on a connection error (its gateway just died), once more on another,
    with the same Idempotency-Key, as a client behind a load balancer would."""
    gateway = gateways.pick()
    for attempt in range(2):
        sent.gateway = gateway.url
        try:
            answer = post(gateway.url, sent)
        except requests.ConnectionError:
            if attempt == 0:
                gateway = gateways.pick(avoid=gateway.url)
                sent.retried = True
                continue
            return sent
        if attempt == 1 and answer.status_code == 409:
            sent.cut = True  # the dead request holds the key until its lock expires: its fate is unknown
            return sent
        sent.status = answer.status_code
        sent.body = answer.json()
        return sent
    sent.cut = True
    return sent


def feed(pool: ThreadPoolExecutor, gateways: Gateways, load: list[Sent], futures: list) -> None:
    """Hand `load` to the clients at AFTER_OUTAGE_PER_SECOND."""
    for sent in load:
        futures.append(pool.submit(send, gateways, sent))
        time.sleep(1 / AFTER_OUTAGE_PER_SECOND)


def owner_of_the_lease(client: redis.Redis, prefix: str, processes) -> object | None:
    """The gateway whose worker holds the delivery lease (the owner is host:pid:suffix)."""
    holder = client.get(f"{prefix}lease:delivery")
    if holder is None:
        return None
    pid = holder.decode().split(":")[1]
    return next((process for process in processes if f"Booting worker with pid: {pid}\n" in process.logs()), None)


def deliveries_by(process) -> int:
    return process.logs().count('"event": "entregue"')


@pytest.mark.slow
def test_two_gateways_on_one_redis_lose_and_duplicate_nothing(new_sandbox, launch, redis_url, redis_prefix):
    started = time.monotonic()
    glpi = new_sandbox()
    glpi.url = glpi.start()
    settings = sandbox_settings(
        glpi.url,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=redis_prefix,
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="8",
        RATE_LIMIT_PER_IP=f"{RATE_LIMIT}/hour",
        TRUSTED_PROXIES="127.0.0.1",
    )
    first, second = launch(settings), launch(settings)
    assert first.exit_code is None and second.exit_code is None
    gateways = Gateways(first, second)
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client, redis_prefix)
    load: list[Sent] = [
        Sent(number, uuid.uuid4().hex, f"203.0.113.{number % 250}")  # at most 2 tickets per client IP
        for number in range(BEFORE_OUTAGE + DURING_OUTAGE + AFTER_OUTAGE)
    ]
    before, during, after = (
        load[:BEFORE_OUTAGE],
        load[BEFORE_OUTAGE : BEFORE_OUTAGE + DURING_OUTAGE],
        load[BEFORE_OUTAGE + DURING_OUTAGE :],
    )

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(lambda sent: send(gateways, sent), before))
        glpi.fault = "http500"  # GLPI down: every request is queued
        list(pool.map(lambda sent: send(gateways, sent), during))
        queued = store.queue_stats()[0]
        glpi.latency_ms = GLPI_LATENCY_MS
        glpi.fault = None  # GLPI back: the lease holder drains the queue while new requests arrive
        back_at = time.monotonic()
        late: list = []
        feeder = threading.Thread(target=feed, args=(pool, gateways, after, late))
        feeder.start()
        while (len(late) < KILL_AFTER_SENT or store.queue_stats()[0] == queued) and (
            time.monotonic() - back_at < DRAIN_DEADLINE
        ):
            time.sleep(0.01)
        victim = owner_of_the_lease(client, redis_prefix, [first, second]) or first
        victim.kill()  # SIGKILL to gunicorn and its workers: mid-delivery, mid-requests
        killed_at = time.monotonic()
        glpi.latency_ms = 0
        gateways.remove(victim)
        restarted = launch(settings)
        assert restarted.exit_code is None, restarted.logs()
        gateways.add(restarted)
        feeder.join()
        for future in late:
            future.result()

    while store.queue_stats()[0] and time.monotonic() - back_at < DRAIN_DEADLINE:
        time.sleep(0.05)
    drained_at = time.monotonic()
    depth = store.queue_stats()[0]
    assert depth == 0, f"{depth} tickets still queued {DRAIN_DEADLINE:g} s after GLPI came back"
    survivor = second if victim is first else first

    # Every answered request is exactly one ticket; no protocol is in two tickets.
    with glpi._lock:
        contents = {ticket_id: ticket["content"] for ticket_id, ticket in glpi.tickets.items()}
    protocols = {ticket_id: PROTOCOL_LINE.search(content).group(1) for ticket_id, content in contents.items()}
    tickets_per_protocol = Counter(protocols.values())
    duplicated = {protocol: count for protocol, count in tickets_per_protocol.items() if count > 1}
    created = [sent for sent in load if sent.status == 201]
    accepted = [sent for sent in load if sent.status == 202]
    unanswered = [sent for sent in load if sent.cut]
    refused = [sent for sent in load if not sent.cut and sent.status not in (201, 202)]
    lost = [sent for sent in created if sent.body["ticket_id"] not in protocols]
    lost += [sent for sent in accepted if tickets_per_protocol[sent.body["protocolo"]] != 1]
    created_ids = [sent.body["ticket_id"] for sent in created]
    queued_protocols = [sent.body["protocolo"] for sent in accepted]
    answered_protocols = {protocols[ticket_id] for ticket_id in created_ids if ticket_id in protocols}
    orphans = len(protocols) - len(answered_protocols | set(queued_protocols))  # tickets of unanswered requests

    # An Idempotency-Key used on one gateway replays on the other.
    replays = []
    for sent in created + accepted:
        other = gateways.pick(avoid=sent.gateway)
        replays.append((sent, post(other.url, sent)))
    replayed = [
        sent
        for sent, answer in replays
        if answer.status_code == sent.status
        and answer.json() == sent.body
        and answer.headers.get("Idempotent-Replayed") == "true"
    ]

    # A per-IP limit counts the requests to both gateways.
    limited_ip = "198.51.100.7"
    statuses = []
    for number in range(2 * RATE_LIMIT):
        sent = Sent(10_000 + number, uuid.uuid4().hex, limited_ip)
        statuses.append(post((survivor if number % 2 else restarted).url, sent).status_code)

    # One key sent to both gateways at once: one ticket, whichever gateway wins.
    glpi.latency_ms = 200  # the requests overlap
    tickets_before = len(glpi.tickets)
    shared_key = uuid.uuid4().hex
    racing = [Sent(20_000, shared_key, f"192.0.2.{number}") for number in range(RACING)]
    with ThreadPoolExecutor(RACING) as pool:
        racing_answers = list(
            pool.map(lambda pair: post(pair[0].url, pair[1]), zip([survivor, restarted] * RACING, racing, strict=False))
        )
    glpi.latency_ms = 0
    racing_statuses = Counter(answer.status_code for answer in racing_answers)
    racing_tickets = {answer.json()["ticket_id"] for answer in racing_answers if answer.status_code == 201}
    new_tickets = len(glpi.tickets) - tickets_before

    retried = [sent for sent in load if sent.retried and not sent.cut]
    adopted = sum(process.logs().count('"event": "chamado_adotado"') for process in (victim, survivor, restarted))
    deliveries = {
        "morto": deliveries_by(victim),
        "sobrevivente": deliveries_by(survivor),
        "reiniciado": deliveries_by(restarted),
    }
    figures = (
        f"\nEscala horizontal: 2 gateways (2 workers cada) num Redis, {CLIENTS} clientes, {len(load)} pedidos, "
        f"GLPI fora por {DURING_OUTAGE} pedidos, SIGKILL no dono da concessão no meio da entrega e dos pedidos\n"
        f"  respondidos: {len(created)} com 201, {len(accepted)} com 202 (fila de {queued} com o GLPI fora); "
        f"cortados pelo SIGKILL (sem resposta, ou 409 ao repetir no outro): {len(unanswered)}; "
        f"respondidos só ao repetir no outro gateway: {len(retried)}; outras respostas: {len(refused)}\n"
        f"  chamados no GLPI: {len(protocols)} (de pedidos cortados: {orphans}); duplicados: {len(duplicated)}; "
        f"perdidos: {len(lost)}\n"
        f"  fila esvaziada {drained_at - back_at:.1f} s depois da volta do GLPI "
        f"({drained_at - killed_at:.1f} s depois do SIGKILL; a concessão expira em 10 s); entregas por gateway: "
        f"{deliveries}; chamados adotados (criados por uma tentativa cortada): {adopted}\n"
        f"  Idempotency-Key repetida no outro gateway: {len(replayed)} de {len(replays)} respostas repetidas; "
        f"limite por IP de {RATE_LIMIT}/hora com pedidos alternados entre os dois: {statuses.count(201)} aceitos, "
        f"{statuses.count(429)} recusados (429); uma chave em {RACING} pedidos simultâneos nos dois: "
        f"{new_tickets} chamado, respostas {dict(sorted(racing_statuses.items()))}\n"
        f"  duração do teste: {time.monotonic() - started:.1f} s"
    )
    print(figures)
    store.close()

    assert duplicated == {}, figures
    assert lost == [], figures
    assert refused == [], [(sent.status, sent.body) for sent in refused]
    assert len(created) + len(accepted) >= len(load) - 2 * CLIENTS, figures  # at most the ones in flight were cut
    assert accepted and queued >= DURING_OUTAGE, figures
    assert len(replayed) == len(replays), [
        (sent.status, sent.body, answer.status_code, answer.text) for sent, answer in replays if sent not in replayed
    ][:5]
    assert statuses == [201] * RATE_LIMIT + [429] * RATE_LIMIT, statuses
    assert new_tickets == 1 and len(racing_tickets) == 1, figures
    assert set(racing_statuses) <= {201, 409}, figures
    assert deliveries["sobrevivente"] + deliveries["reiniciado"] > 0, figures  # the drain went on without the victim
