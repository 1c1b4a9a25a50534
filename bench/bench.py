"""`make bench`: the gateway, the original app's naive flow and the floor, side by side in one run.

Starts the GLPI sandbox as its own process with a per-call latency, serves the gateway and
the naive baseline (`naive_app.py`) under gunicorn exactly as the Docker image does, and
drives `POST /criar-chamado` with a mix of CNPJs (formatted, bare, alphanumeric) at several
concurrency levels. The floor is a bare `POST /Ticket` straight to the sandbox: the one GLPI
call a ticket cannot avoid. Each round runs every target at every level back to back, so the
noise of a shared machine hits them alike; the table shows medians over rounds and ratios
from this run.

    .venv/bin/python -m bench.bench                   # what `make bench` runs (from the repository root)
    .venv/bin/python -m bench.bench --worker-models   # compare gunicorn worker models instead

The load generator is this process: one thread and one keep-alive `http.client` connection
per client. It reports its own CPU use so you can see it is not the bottleneck.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import runpy
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from glpi_gateway.ticket_format import build_ticket_input
from glpi_gateway.validation import validate_ticket_request
from glpi_sandbox import FIELDS_OPTION_ID
from tests.harness import GATEWAY_VARIABLES, ROOT, free_port

APP_TOKEN = "bench-app-token-0123456789abcdefghij"
USER_TOKEN = "bench-user-token-0123456789abcdefghi"
CATEGORY_ID, REQUEST_TYPE_ID, REQUESTER_ID = 1, 7, 8
HOST = "127.0.0.1"
BUFFERING_WORKER = "glpi_gateway.buffering_worker.BufferingThreadWorker"
SERVER_VARIABLES = ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_WORKER_CLASS", "GUNICORN_TIMEOUT")
# The sandbox's seed entities, each spelled as forms really send them.
CNPJ_MIX = (
    ("11.222.333/0001-81", 1),
    ("11222333000181", 1),
    ("11444777000161", 2),
    ("11.444.777/0001-61", 2),
    ("12.ABC.345/01DE-35", 3),
    ("12abc34501de35", 3),
    ("A1.B2C.3D4/E5F6-68", 6),
    ("a1b2c3d4e5f668", 6),
)
DESCRIPTIONS = (
    "A impressora do financeiro não imprime.\nJá reiniciei e troquei o cabo USB.",
    "Sem acesso à internet desde as 8h em todas as máquinas do andar.",
    'O sistema de notas fiscais mostra "erro 500" ao emitir & cancelar notas.\nUrgente: fechamento do mês.',
    "Computador da recepção muito lento; o antivírus parece travar tudo na inicialização.",
)
GATEWAY, NAIVE, FLOOR = "gateway", "ingênuo", "piso"


@dataclass
class Cell:
    """One target at one concurrency level for one round."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    tickets: int
    glpi_calls: int
    client_cpu: float  # CPU seconds this process spent per wall second (1.0 = one core)
    machine_busy: float  # share of all CPUs busy during the cell


# Replaced in every request by a number of its own: the gateway answers an identical keyless
# repeat from its dedupe window (DEDUPE_WINDOW_SECONDS) without asking GLPI, which is not the
# work being measured. It is in the e-mail too: each request is another customer, as in real
# traffic, not one customer past the daily notification limit (EMAIL_NOTIFY_LIMIT) every time.
UNIQUE_MARK = b"{pedido}"


@dataclass
class Target:
    name: str
    port: int
    path: str
    bodies: list[bytes]
    client_headers: list[dict[str, str]]  # client i uses entry i % len


@dataclass
class Server:
    """A gunicorn master started by the benchmark."""

    process: subprocess.Popen
    port: int
    seconds_to_first_ping: float
    log_path: Path
    startup_cpu_seconds: float = 0.0  # master and workers, until the first 200 on /ping

    def cpu_seconds(self) -> float:
        total = 0
        for pid in (self.process.pid, *self.worker_pids()):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        return total / os.sysconf("SC_CLK_TCK")

    def worker_pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                pids.append(int(entry.name))
        return pids

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Sandbox:
    process: subprocess.Popen
    api_url: str
    port: int

    def _request(self, method: str, path: str, headers: dict[str, str] | None = None) -> dict:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return json.loads(response.read())
        finally:
            connection.close()

    def stats(self) -> dict[str, int]:
        return self._request("GET", "/_sandbox/stats")["calls"]

    def total_calls(self) -> int:
        return sum(self.stats().values())

    def open_session(self) -> str:
        answer = self._request(
            "GET", "/apirest.php/initSession", {"App-Token": APP_TOKEN, "Authorization": f"user_token {USER_TOKEN}"}
        )
        return answer["session_token"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# --- processes -------------------------------------------------------------------------------


def start_sandbox(latency_ms: float) -> Sandbox:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "glpi_sandbox",
            "--host",
            HOST,
            "--port",
            "0",
            "--latency-ms",
            str(latency_ms),
            "--app-token",
            APP_TOKEN,
            "--user-token",
            USER_TOKEN,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None  # stdout=PIPE
    first_line = process.stdout.readline()  # "GLPI 10 sandbox listening on http://127.0.0.1:N/apirest.php"
    api_url = first_line.split()[-1]
    return Sandbox(process, api_url, int(api_url.split(":")[2].split("/")[0]))


def gunicorn_settings() -> dict:
    """The settings gunicorn.conf.py yields in this environment, as gunicorn would read them."""
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def serve(app_spec: str, sandbox: Sandbox, log_dir: Path, server_env: dict[str, str]) -> Server:
    """`gunicorn <app_spec>` from the repository root, configured as in the Docker image."""
    port = free_port()
    env = dict(os.environ)  # WEB_CONCURRENCY & co. pass through, as `docker run -e` would
    env.update({name: "" for name in GATEWAY_VARIABLES if name not in SERVER_VARIABLES})
    env.update(
        {
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",  # as in the Dockerfile
            "HOST": HOST,
            "PORT": str(port),
            "DATA_DIR": str(log_dir / f"dados-{port}"),  # a store of its own: nothing from an earlier run
            "GLPI_URL": sandbox.api_url,
            "GLPI_APP_TOKEN": APP_TOKEN,
            "GLPI_USER_TOKEN": USER_TOKEN,
            "GLPI_DEFAULT_CATEGORY_ID": str(CATEGORY_ID),
            "GLPI_REQUEST_TYPE_ID": str(REQUEST_TYPE_ID),
            "GLPI_REQUESTER_USER_ID": str(REQUESTER_ID),
        }
    )
    env.update(server_env)
    log_path = log_dir / f"{app_spec.split(':')[0]}-{port}.log"
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", app_spec], cwd=ROOT, env=env, stdout=log_file, stderr=log_file
        )
    while time.perf_counter() - started < 30:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn {app_spec} exited:\n{log_path.read_text()}")
        connection = http.client.HTTPConnection(HOST, port, timeout=1)
        try:
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                server = Server(process, port, time.perf_counter() - started, log_path)
                server.startup_cpu_seconds = server.cpu_seconds()
                return server
        except OSError:
            time.sleep(0.005)
        finally:
            connection.close()
    process.kill()
    raise SystemExit(f"gunicorn {app_spec} did not answer /ping in 30 s:\n{log_path.read_text()}")


def wait_until_quiet(sandbox: Sandbox, quiet_seconds: float = 0.5) -> int:
    """Wait until every worker finished its start-up calls to GLPI; returns the calls so far."""
    total, quiet_since = sandbox.total_calls(), time.perf_counter()
    while time.perf_counter() - quiet_since < quiet_seconds:
        time.sleep(0.05)
        now = sandbox.total_calls()
        if now != total:
            total, quiet_since = now, time.perf_counter()
    return total


def post_one(port: int, body: bytes) -> int:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("POST", "/criar-chamado", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@dataclass
class Startup:
    """Medians over several fresh starts, and the worst cold path."""

    seconds_to_first_ping: float
    cpu_seconds: float
    glpi_calls: int
    first_ticket_calls: int


def start_measured(
    app_spec: str, sandbox: Sandbox, log_dir: Path, server_env: dict[str, str], starts: int
) -> tuple[Server, Startup]:
    """Start a server `starts` times, each time counting the GLPI calls of its start-up and of
    its first ticket (the cold path); the last one is left running."""
    servers: list[Server] = []
    startup_calls, first_ticket_calls = [], []
    for attempt in range(starts):
        if servers:
            servers[-1].stop()
        before = sandbox.total_calls()
        server = serve(app_spec, sandbox, log_dir, server_env)
        servers.append(server)
        ready = wait_until_quiet(sandbox)
        startup_calls.append(ready - before)
        body = ticket_bodies()[attempt % len(CNPJ_MIX)].replace(UNIQUE_MARK, b"partida-%d" % attempt)
        status = post_one(server.port, body)
        if status != 201:
            server.stop()
            raise SystemExit(f"{app_spec}: the first ticket answered {status}:\n{server.log_path.read_text()}")
        first_ticket_calls.append(sandbox.total_calls() - ready)
    return servers[-1], Startup(
        seconds_to_first_ping=statistics.median(s.seconds_to_first_ping for s in servers),
        cpu_seconds=statistics.median(s.startup_cpu_seconds for s in servers),
        glpi_calls=max(startup_calls),
        first_ticket_calls=max(first_ticket_calls),
    )


# --- load ------------------------------------------------------------------------------------


def ticket_requests() -> list[tuple[dict, int]]:
    requests = []
    for index, (cnpj, entity_id) in enumerate(CNPJ_MIX):
        body = {
            "nome_cliente": ("Maria Souza", "João Pereira", "Ana Lima & Filhos", "Carlos Mendes")[index % 4],
            "telefone_cliente": f"(11) 9{index:04d}-{index * 137 % 10000:04d}",
            "cnpj_cliente": cnpj,
            "anydesk_cliente": f"{100 + index} {200 + index} {300 + index}",
            "descricao_problema": DESCRIPTIONS[index % len(DESCRIPTIONS)] + " (pedido {pedido})",
        }
        if index % 2:
            body["email_cliente"] = f"cliente{index}.{UNIQUE_MARK.decode()}@example.com.br"
        requests.append((body, entity_id))
    return requests


def ticket_bodies() -> list[bytes]:
    return [json.dumps(body).encode() for body, _ in ticket_requests()]


def floor_bodies() -> list[bytes]:
    """The POST /Ticket inputs the gateway itself sends for the same mix."""
    return [
        json.dumps(
            {
                "input": build_ticket_input(
                    validate_ticket_request(body),
                    entity_id=entity_id,
                    category_id=CATEGORY_ID,
                    requester_user_id=REQUESTER_ID,
                    request_type_id=REQUEST_TYPE_ID,
                )
            }
        ).encode()
        for body, entity_id in ticket_requests()
    ]


def machine_cpu_times() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def drive(target: Target, clients: int, seconds: float, sandbox: Sandbox) -> Cell:
    """`clients` threads, each sending one request after another for `seconds`."""
    barrier = threading.Barrier(clients + 1)
    run = time.monotonic_ns()
    outcomes: list[tuple[list[float], int]] = [([], 0)] * clients

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(HOST, target.port, timeout=60)
        connection.connect()
        headers = target.client_headers[index % len(target.client_headers)]
        latencies, errors, sent = [], 0, index
        barrier.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            body = target.bodies[sent % len(target.bodies)].replace(UNIQUE_MARK, b"%d.%d.%d" % (run, index, sent))
            sent += 1
            began = time.perf_counter()
            try:
                connection.request("POST", target.path, body, headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 201
            except (OSError, http.client.HTTPException):
                connection.close()  # the next request reconnects
                ok = False
            if ok:
                latencies.append(time.perf_counter() - began)
            else:
                errors += 1
        connection.close()
        outcomes[index] = (latencies, errors)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    calls_before = sandbox.total_calls()
    busy_before, all_before = machine_cpu_times()
    barrier.wait()
    started, cpu_started = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    busy_after, all_after = machine_cpu_times()
    latencies = sorted(latency for latencies, _ in outcomes for latency in latencies)
    return Cell(
        requests_per_second=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        errors=sum(errors for _, errors in outcomes),
        tickets=len(latencies),
        glpi_calls=sandbox.total_calls() - calls_before,
        client_cpu=cpu / elapsed,
        machine_busy=(busy_after - busy_before) / max(all_after - all_before, 1),
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))]


def run_rounds(
    targets: list[Target], levels: list[int], rounds: int, seconds: float, sandbox: Sandbox, warmup_seconds: float
) -> dict[tuple[str, int], list[Cell]]:
    for target in targets:  # every thread's GLPI session and every entity cached, in every worker
        drive(target, max(levels), warmup_seconds, sandbox)
    cells: dict[tuple[str, int], list[Cell]] = {}
    for round_number in range(rounds):
        shift = round_number % len(targets)  # rotate the order so no target always goes first
        for level in levels:
            for target in targets[shift:] + targets[:shift]:
                cells.setdefault((target.name, level), []).append(drive(target, level, seconds, sandbox))
        print(f"  rodada {round_number + 1}/{rounds} feita", file=sys.stderr, flush=True)
    return cells


# --- report ----------------------------------------------------------------------------------


def machine_description() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} disponíveis), {model}; "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; carga {load}"
    )


def median(cells: list[Cell], attribute: str) -> float:
    return statistics.median(getattr(cell, attribute) for cell in cells)


def calls_per_ticket(cells: list[Cell]) -> float:
    return sum(cell.glpi_calls for cell in cells) / max(sum(cell.tickets for cell in cells), 1)


def model_name(settings: dict) -> str:
    workers, threads, kind = settings["workers"], settings["threads"], settings["worker_class"]
    threaded = kind == "gthread" or kind.endswith("ThreadWorker")  # gthread and its subclasses
    return f"{kind}, {workers} worker(s)" + (f" × {threads} threads" if threaded else "")


def format_row(columns: list[str], widths: list[int]) -> str:
    return "  ".join(
        text.ljust(width) if index == 0 else text.rjust(width)
        for index, (text, width) in enumerate(zip(columns, widths, strict=True))
    ).rstrip()


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[index]) for row in rows if row) for index in range(len(rows[0]))]
    print(format_row(rows[0], widths))
    print("  ".join("-" * width for width in widths))
    for row in rows[1:]:
        print(format_row(row, widths) if row else "")


def verdict(ok: bool) -> str:
    return "sim" if ok else "NÃO"


def main_report(args, cells, levels, servers: dict[str, Server], startups: dict[str, Startup], settings: dict) -> bool:
    names = (GATEWAY, NAIVE, FLOOR)
    rows = [["", "gateway", "ingênuo", "piso (POST)", "meta", "ok?"]]
    checks: list[bool] = []

    def add(label: str, values: list[str], goal: str = "", ok: bool | None = None) -> None:
        rows.append([label, *values, goal, "" if ok is None else verdict(ok)])
        if ok is not None:
            checks.append(ok)

    for level in levels:
        add(f"req/s, {level} cliente(s)", [f"{median(cells[(n, level)], 'requests_per_second'):.0f}" for n in names])
    for level in levels:
        add(f"p50 ms, {level} cliente(s)", [f"{median(cells[(n, level)], 'p50_ms'):.1f}" for n in names])
    for level in levels:
        add(f"p99 ms, {level} cliente(s)", [f"{median(cells[(n, level)], 'p99_ms'):.1f}" for n in names])
    for level in levels:
        errors = [sum(cell.errors for cell in cells[(n, level)]) for n in names]
        goal_ok = errors[0] == 0 if level == max(levels) else None
        add(f"erros, {level} cliente(s)", [str(e) for e in errors], "0" if goal_ok is not None else "", goal_ok)
    warm = {n: calls_per_ticket([cell for level in levels for cell in cells[(n, level)]]) for n in names}
    add("chamadas ao GLPI por chamado (aquecido)", [f"{warm[n]:.3f}" for n in names], "≤ 1,05", warm[GATEWAY] <= 1.05)
    cold = startups[GATEWAY].first_ticket_calls
    add(
        "chamadas no 1º chamado (processo novo)",
        [str(cold), str(startups[NAIVE].first_ticket_calls), "1"],
        "≤ 3",
        cold <= 3,
    )
    add("chamadas ao GLPI na partida", [str(startups[n].glpi_calls) for n in (GATEWAY, NAIVE)] + ["-"])
    rss = {n: max(servers[n].worker_rss_mb()) for n in (GATEWAY, NAIVE)}
    add("RSS por worker, MB (maior)", [f"{rss[GATEWAY]:.1f}", f"{rss[NAIVE]:.1f}", "-"], "≤ 60", rss[GATEWAY] <= 60)
    first_ping = startups[GATEWAY].seconds_to_first_ping
    add(
        "partida até o 1º 200 em /ping, s",
        [f"{first_ping:.2f}", f"{startups[NAIVE].seconds_to_first_ping:.2f}", "-"],
        "< 1",
        first_ping < 1,
    )
    add("CPU da partida (master + workers), s", [f"{startups[n].cpu_seconds:.2f}" for n in (GATEWAY, NAIVE)] + ["-"])
    rows.append([])
    middle, low = (16 if 16 in levels else levels[len(levels) // 2]), min(levels)
    throughput = median(cells[(GATEWAY, middle)], "requests_per_second") / median(
        cells[(NAIVE, middle)], "requests_per_second"
    )
    add(f"vazão gateway ÷ ingênuo, {middle} clientes", [f"{throughput:.2f}×", "", ""], "≥ 4×", throughput >= 4)
    p50_ratio = median(cells[(GATEWAY, low)], "p50_ms") / median(cells[(FLOOR, low)], "p50_ms")
    add(f"p50 gateway ÷ piso, {low} cliente", [f"{p50_ratio:.2f}×", "", ""], "≤ 1,15×", p50_ratio <= 1.15)
    tail = median(cells[(GATEWAY, middle)], "p99_ms") / median(cells[(GATEWAY, middle)], "p50_ms")
    add(f"p99 ÷ p50 do gateway, {middle} clientes", [f"{tail:.2f}×", "", ""], "≤ 3×", tail <= 3)

    print()
    print(f"Máquina: {machine_description()}")
    print(
        f"gunicorn: {model_name(settings)} (gateway e ingênuo iguais); latência da sandbox "
        f"{args.latency_ms:g} ms por chamada; {args.rounds} rodadas × {args.seconds:g} s por nível, medianas"
    )
    print()
    print_table(rows)
    all_cells = [cell for group in cells.values() for cell in group]
    print()
    fastest = max(median(cells[(FLOOR, level)], "requests_per_second") for level in levels)
    print(
        f"Gerador de carga (este processo, uma thread e uma conexão http.client por cliente): até "
        f"{max(c.client_cpu for c in all_cells) * 100:.0f}% de um núcleo; sustentou {fastest:.0f} req/s "
        f"contra o piso. Máquina ocupada até {max(c.machine_busy for c in all_cells) * 100:.0f}% "
        f"durante as medições."
    )
    print(round_by_round(cells, middle))
    passed = all(checks)
    print("Todas as metas atingidas." if passed else "Alguma meta NÃO foi atingida (veja a coluna ok?).")
    return passed


def round_by_round(cells: dict[tuple[str, int], list[Cell]], level: int) -> str:
    """The throughput ratio of each round: the gateway and the naive flow ran back to back, so
    the spread shows how much the machine's noise moves the ratio from one run to the next."""
    gateway, naive = cells[(GATEWAY, level)], cells[(NAIVE, level)]
    ratios = ", ".join(
        f"{g.requests_per_second / n.requests_per_second:.2f}×" for g, n in zip(gateway, naive, strict=True)
    )
    slowest, fastest = (f(cell.requests_per_second for cell in naive) for f in (min, max))
    return (
        f"Vazão gateway ÷ ingênuo com {level} clientes, rodada a rodada: {ratios} "
        f"(o ingênuo variou de {slowest:.0f} a {fastest:.0f} req/s)."
    )


def worker_models_report(args, sandbox: Sandbox, log_dir: Path) -> None:
    models = [
        ("sync", 2, 1),
        ("sync", 4, 1),
        ("gthread", 1, 16),
        ("gthread", 2, 8),
        ("gthread", 2, 16),
        ("gthread", 4, 8),
        # gthread whose threads get only complete requests (slow clients, docs/seguranca.md): the
        # former default, one process per core of the machine in docs/desempenho.md, then one more.
        (BUFFERING_WORKER, 2, 16),
        (BUFFERING_WORKER, 3, 16),
        (BUFFERING_WORKER, 3, 11),  # the default
    ]
    levels = [16, 64]
    rows = [
        [
            "modelo",
            *(f"req/s {n}" for n in levels),
            *(f"p50 ms {n}" for n in levels),
            *(f"p99 ms {n}" for n in levels),
            "erros",
            "RSS MB (soma)",
        ]
    ]
    for kind, workers, threads in models:
        env = {"GUNICORN_WORKER_CLASS": kind, "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads)}
        server = serve("app:create_app()", sandbox, log_dir, env)
        wait_until_quiet(sandbox)
        try:
            target = Target(
                GATEWAY, server.port, "/criar-chamado", ticket_bodies(), [{"Content-Type": "application/json"}]
            )
            cells = run_rounds([target], levels, args.rounds, args.seconds, sandbox, args.warmup)
            rss = sum(server.worker_rss_mb())
        finally:
            server.stop()
        short = "gthread+frente" if kind == BUFFERING_WORKER else kind
        label = f"{short} {workers}" + (f"×{threads}" if kind in ("gthread", BUFFERING_WORKER) else "")
        rows.append(
            [
                label,
                *(f"{median(cells[(GATEWAY, n)], 'requests_per_second'):.0f}" for n in levels),
                *(f"{median(cells[(GATEWAY, n)], 'p50_ms'):.1f}" for n in levels),
                *(f"{median(cells[(GATEWAY, n)], 'p99_ms'):.1f}" for n in levels),
                str(sum(cell.errors for n in levels for cell in cells[(GATEWAY, n)])),
                f"{rss:.0f}",
            ]
        )
        print(f"  {label} feito", file=sys.stderr, flush=True)
    print()
    print(f"Máquina: {machine_description()}")
    print(f"Só o gateway; latência da sandbox {args.latency_ms:g} ms; {args.rounds} rodadas × {args.seconds:g} s")
    print()
    print_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=20.0, help="latency the sandbox adds to every GLPI call")
    parser.add_argument("--clients", default="1,16,64", help="concurrency levels, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each target at each level")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds of load before measuring")
    parser.add_argument("--starts", type=int, default=3, help="fresh starts measured per server (medians)")
    parser.add_argument("--worker-models", action="store_true", help="compare gunicorn worker models instead")
    args = parser.parse_args(argv)
    levels = sorted(int(level) for level in args.clients.split(","))

    sandbox = start_sandbox(args.latency_ms)
    servers: list[Server] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as log_dir:
            if args.worker_models:
                worker_models_report(args, sandbox, Path(log_dir))
                return 0
            gateway, gateway_startup = start_measured("app:create_app()", sandbox, Path(log_dir), {}, args.starts)
            servers.append(gateway)
            naive, naive_startup = start_measured(
                "bench.naive_app:create_app()",
                sandbox,
                Path(log_dir),
                {"GLPI_CNPJ_FIELD_ID": str(FIELDS_OPTION_ID)},
                args.starts,
            )
            servers.append(naive)
            floor_sessions = [sandbox.open_session() for _ in range(max(levels))]  # one per client, like the gateway
            json_headers = {"Content-Type": "application/json"}
            targets = [
                Target(GATEWAY, gateway.port, "/criar-chamado", ticket_bodies(), [json_headers]),
                Target(NAIVE, naive.port, "/criar-chamado", ticket_bodies(), [json_headers]),
                Target(
                    FLOOR,
                    sandbox.port,
                    "/apirest.php/Ticket",
                    floor_bodies(),
                    [{**json_headers, "App-Token": APP_TOKEN, "Session-Token": s} for s in floor_sessions],
                ),
            ]
            print(
                f"medindo {', '.join(t.name for t in targets)} com {args.clients} clientes...",
                file=sys.stderr,
                flush=True,
            )
            cells = run_rounds(targets, levels, args.rounds, args.seconds, sandbox, args.warmup)
            passed = main_report(
                args,
                cells,
                levels,
                {GATEWAY: gateway, NAIVE: naive},
                {GATEWAY: gateway_startup, NAIVE: naive_startup},
                gunicorn_settings(),
            )
            return 0 if passed else 1
    finally:
        for server in servers:
            server.stop()
        sandbox.stop()


if __name__ == "__main__":
    raise SystemExit(main())
