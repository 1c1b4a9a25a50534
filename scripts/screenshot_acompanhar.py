"""`make screenshot`: the follow-up page's picture in the README (docs/img/acompanhar.png), taken anew.

Starts the GLPI sandbox and the gateway (under gunicorn, as tests/harness.py does), opens a ticket
with a technician's answer and a customer's message, and photographs /acompanhar in headless Chromium.
Nothing leaves this machine.

    .venv/bin/python -m scripts.screenshot_acompanhar [--saida docs/img/acompanhar.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from glpi_sandbox import GlpiSandbox
from tests.harness import (
    ROOT,
    SANDBOX_APP_TOKEN,
    SANDBOX_USER_TOKEN,
    headless_chromium,
    sandbox_settings,
    start_gateway,
)

OUTPUT = ROOT / "docs" / "img" / "acompanhar.png"
WIDTH = 760  # about the width of a page or of an iframe on a company site
TICKET = {
    "nome_cliente": "Maria Souza",
    "telefone_cliente": "(11) 99999-0000",
    "cnpj_cliente": "11.222.333/0001-81",
    "anydesk_cliente": "123 456 789",
    "descricao_problema": "A impressora fiscal do caixa 2 não imprime.",
}
TECHNICIAN_ANSWER = (
    "<p>Olá, Maria. Vou acessar pelo AnyDesk às 14h para reinstalar o driver.</p>"
    "<p>Deixe o computador do caixa 2 ligado, por favor.</p>"
)
CUSTOMER_MESSAGE = "Combinado, o computador fica ligado. A impressora do caixa 1 funciona normalmente."


def take(output: Path) -> None:
    sandbox = GlpiSandbox(app_token=SANDBOX_APP_TOKEN, user_tokens={SANDBOX_USER_TOKEN: 7})
    sandbox_url = sandbox.start(host="127.0.0.1", port=0)
    with tempfile.TemporaryDirectory(prefix="screenshot-") as tmp:
        gateway = start_gateway(Path(tmp), sandbox_settings(sandbox_url, GLPI_FOLLOW_CACHE_TTL="0"))
        try:
            if gateway.exit_code is not None:
                raise SystemExit(f"o gateway não subiu:\n{gateway.logs()}")
            created = gateway.post_ticket(TICKET).json()
            sandbox.add_actor(created["ticket_id"])  # the technician takes it: "Em atendimento (atribuído)"
            sandbox.add_followup(created["ticket_id"], TECHNICIAN_ANSWER)
            protocol = created["protocolo"]
            added = requests.post(
                f"{gateway.url}/chamados/{protocol}/complemento",
                json={"mensagem": CUSTOMER_MESSAGE, "nome": "Maria"},
                timeout=30,
            )
            added.raise_for_status()
            photograph(f"{gateway.url}/acompanhar?protocolo={protocol}", output)
        finally:
            gateway.stop()
            sandbox.stop()


def photograph(url: str, output: Path) -> None:
    with headless_chromium(WIDTH, 800) as driver:
        driver.get(url)
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".gf-linha-do-tempo li"))
        height = driver.execute_script("return Math.ceil(document.documentElement.getBoundingClientRect().height)")
        driver.set_window_size(WIDTH, height + 200)  # the window's frame takes part of it in some versions
        inner = driver.execute_script("return window.innerHeight")
        driver.set_window_size(WIDTH, height + 200 - (inner - height))
        output.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(output))
    print(f"escrito {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.screenshot_acompanhar", description=__doc__)
    parser.add_argument("--saida", type=Path, default=OUTPUT, help="o arquivo PNG (padrão: docs/img/acompanhar.png)")
    take(parser.parse_args(argv).saida.resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
