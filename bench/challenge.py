"""`make bench-desafio`: what the contact form's proof of work costs on each side.

In headless Chromium: the Web Worker the form uses (formulario-desafio.js) solves fresh
challenges at several difficulties, and the time per solution is printed (median, p90, max).
On the server: verifying a solution (HMAC, SHA-256) and marking it used in the SQLite store,
the extra work a form submission brings. Pick FORM_CHALLENGE_DIFFICULTY from the first table:
people should not wait, bots should pay.

    .venv/bin/python -m bench.challenge [--rounds N] [--difficulties 12,14,16,18]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from glpi_gateway.challenge import FormChallenge, challenge_secret, issue, solve, verify
from glpi_gateway.store.sqlite import SqliteStore
from tests.harness import headless_chromium

STATIC = Path(__file__).resolve().parent.parent / "glpi_gateway" / "web" / "static"
# Runs in the page: solves each challenge in a new worker, as the form does, and times it.
SOLVE_ALL = """
var challenges = arguments[0], done = arguments[arguments.length - 1], times = [], index = 0;
function next() {
  if (index === challenges.length) { done(times); return; }
  var challenge = challenges[index++], started = performance.now(), worker = new Worker("formulario-desafio.js");
  worker.onmessage = function (event) { worker.terminate(); times.push([performance.now() - started,
    event.data.solucao]); next(); };
  worker.postMessage(challenge);
}
next();
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def browser_times(difficulties: list[int], rounds: int) -> dict[int, list[float]]:
    secret = challenge_secret((("formulario", "bench"),))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(STATIC)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results: dict[int, list[float]] = {}
    with headless_chromium() as driver:
        driver.set_script_timeout(600)
        try:
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/formulario.css")  # any page of that origin
            for difficulty in difficulties:
                issued = [issue(secret, difficulty, 600, time.time()) for _ in range(rounds)]
                payload = [{"desafio": c.token, "dificuldade": difficulty} for c in issued]
                timed = driver.execute_async_script(SOLVE_ALL, payload)
                for challenge, (_, solution) in zip(issued, timed, strict=True):
                    verify(secret, challenge.token, solution, difficulty, time.time())  # the browser got it right
                results[difficulty] = [milliseconds for milliseconds, _ in timed]
        finally:
            server.shutdown()
    return results


def server_cost(rounds: int) -> tuple[float, float]:
    """Microseconds per check: verify alone, and verify plus marking the challenge used in SQLite."""
    secret = challenge_secret((("formulario", "bench"),))
    solved = []
    for _ in range(rounds):
        challenge = issue(secret, 8, 600, time.time())
        solved.append((challenge.token, solve(challenge.token, 8)))
    started = time.perf_counter()
    for token, solution in solved:
        verify(secret, token, solution, 8, time.time())
    verify_only = (time.perf_counter() - started) / rounds * 1e6
    with tempfile.TemporaryDirectory(prefix="desafio-bench-") as data_dir:
        store = SqliteStore(data_dir)
        guard = FormChallenge(secret, 8, 600, store)
        started = time.perf_counter()
        for token, solution in solved:
            guard.check(token, solution)
        with_store = (time.perf_counter() - started) / rounds * 1e6
        store.close()
    return verify_only, with_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--difficulties", default="12,14,16,18")
    args = parser.parse_args()
    difficulties = [int(value) for value in args.difficulties.split(",")]
    print("Solving the challenge in headless Chromium (the form's Web Worker), ms per solution:")
    print(f"{'difficulty':>10} {'median':>8} {'p90':>8} {'max':>8}")
    for difficulty, times in browser_times(difficulties, args.rounds).items():
        ordered = sorted(times)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        print(f"{difficulty:>10} {statistics.median(ordered):>8.0f} {p90:>8.0f} {ordered[-1]:>8.0f}")
    verify_only, with_store = server_cost(2000)
    print(f"Server: verifying a solution {verify_only:.0f} µs; with marking it used in SQLite {with_store:.0f} µs")


if __name__ == "__main__":
    main()
