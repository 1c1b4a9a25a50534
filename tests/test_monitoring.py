"""monitoring/: the Grafana dashboard and the Prometheus alert rules stay true to /metrics.

Every metric name the dashboard's queries and the rules' expressions use must be in a real scrape
of the gateway (gunicorn, two workers) after a few requests; promtool must accept the rules, pass
their unit tests (monitoring/alertas-teste.yml) and parse every query of the dashboard. Without
promtool (Debian's `prometheus` package) those tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from glpi_gateway.delivery import REFUSAL_CODIGOS
from glpi_gateway.errors import ERROR_ANSWERS
from tests.harness import ROOT, sandbox_settings

DASHBOARD = ROOT / "monitoring" / "grafana-dashboard.json"
RULES = ROOT / "monitoring" / "alertas.yml"
RULE_TESTS = ROOT / "monitoring" / "alertas-teste.yml"
# Words of PromQL that look like metric names: operators and modifiers.
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
)
# What Grafana substitutes before Prometheus sees a query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": ".*", "$endpoint": ".*"}
SERVER_ERROR_CODIGOS = {
    answer.codigo for answer in ERROR_ANSWERS if isinstance(answer.status, int) and answer.status >= 500
}


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, keywords, labels or numbers)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # strings: label values
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if match.group() in PROMQL_WORDS or text[match.end() :].lstrip().startswith("("):
            continue  # a keyword, or a function
        names.add(match.group())
    return names


def label_matchers(expression: str) -> list[tuple[str, str, str]]:
    """(metric, label, value) for every `label=~"value"` or `label="value"` of the expression."""
    found = []
    for selector in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^{}]*)\}", expression):
        for label, value in re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', selector.group(2)):
            found.append((selector.group(1), label, value))
    return found


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_queries() -> list[str]:
    """Every PromQL query of the dashboard, Grafana's variables in place."""
    return [target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def variable_queries() -> list[str]:
    return [variable["definition"] for variable in dashboard()["templating"]["list"] if variable["type"] == "query"]


def rule_expressions() -> dict[str, str]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def used_metric_names() -> set[str]:
    names = set()
    for expression in [*dashboard_queries(), *rule_expressions().values()]:
        names |= metric_names(expression)
    for query in variable_queries():
        names.add(re.fullmatch(r"label_values\((\w+),\s*\w+\)", query).group(1))
    return names


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but promtool is not installed (Debian package prometheus, in .ci/run)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return found


# --- reading PromQL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("rate(a_total[5m]) * 60", {"a_total"}),
        ('sum by (codigo) (rate(b_total{codigo=~"x|y", job=~"$job"}[$__rate_interval]))', {"b_total"}),
        ("histogram_quantile(0.95, sum by (le, endpoint) (rate(c_bucket[5m])))", {"c_bucket"}),
        ("max(d) > 900 unless sum(increase(e_total[10m])) > 0", {"d", "e_total"}),
        ("(sum(rate(f[5m])) or vector(0)) + sum(g) / (h + i) > 0.05", {"f", "g", "h", "i"}),
        ("sum(rate(j[5m])) by (method) and on() k offset 5m", {"j", "k"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expression, names):
    assert metric_names(expression) == names


# --- the dashboard -------------------------------------------------------------------------------------


def test_dashboard_is_importable_grafana_json():
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in board["templating"]["list"]}
    assert {"datasource", "job", "endpoint"} <= variables
    for panel in board["panels"]:
        assert panel["title"] and panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs))


def test_dashboard_shows_what_the_person_on_call_needs():
    queries = dashboard_queries()

    def uses(*needles: str) -> bool:
        return any(all(needle in query for needle in needles) for query in queries)

    assert uses("glpi_gateway_tickets_created_total", "* 60")  # tickets per minute, by outcome
    assert uses("glpi_gateway_tickets_queued_total", "* 60") and uses("glpi_gateway_tickets_failed_total", "* 60")
    for quantile in ("0.5", "0.95", "0.99"):  # GLPI latency percentiles
        assert uses(f"histogram_quantile({quantile}", "glpi_gateway_glpi_request_duration_seconds_bucket")
    assert uses("glpi_gateway_entity_cache_hits_total", "glpi_gateway_entity_cache_misses_total")  # cache hit ratio
    assert uses("max(glpi_gateway_queue_depth") and uses("max(glpi_gateway_queue_oldest_age_seconds")  # never sum
    assert uses("sum by (codigo)", "glpi_gateway_tickets_failed_total")  # refusals by codigo


def test_every_codigo_the_dashboard_and_rules_name_is_one_the_gateway_answers():
    known = {answer.codigo for answer in ERROR_ANSWERS} | set(REFUSAL_CODIGOS)
    for expression in [*dashboard_queries(), *rule_expressions().values()]:
        for _, label, value in label_matchers(expression):
            if label == "codigo":
                assert set(value.split("|")) <= known, value


def test_the_server_error_ratio_counts_exactly_the_catalogues_5xx_answers():
    ratio = rule_expressions()["GlpiGatewayProporcaoDeErros"]
    [codigos] = [value for _, label, value in label_matchers(ratio) if label == "codigo"]
    assert set(codigos.split("|")) == SERVER_ERROR_CODIGOS
    panel_codigos = {
        value for query in dashboard_queries() for _, label, value in label_matchers(query) if label == "codigo"
    }
    assert panel_codigos == {codigos}


# --- against a real scrape ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_metric_the_dashboard_and_rules_use_is_in_a_real_scrape(sandbox, launch):
    gateway = launch(sandbox_settings(sandbox.url, WEB_CONCURRENCY="2"))
    ticket = {
        "nome_cliente": "Maria Souza",
        "telefone_cliente": "(11) 99999-0000",
        "cnpj_cliente": "11.222.333/0001-81",
        "anydesk_cliente": "123 456 789",
        "descricao_problema": "Métricas do painel.",
    }
    for _ in range(3):  # a cache miss, then hits; GLPI calls for the histogram
        assert requests.post(f"{gateway.url}/criar-chamado", json=ticket, timeout=30).status_code == 201
    assert requests.post(f"{gateway.url}/criar-chamado", json={}, timeout=30).status_code == 400  # a codigo
    scrape = requests.get(f"{gateway.url}/metrics", timeout=30)
    assert scrape.status_code == 200
    families = list(text_string_to_metric_families(scrape.text))
    exposed = {sample.name for family in families for sample in family.samples}
    labels = {sample.name: set(sample.labels) for family in families for sample in family.samples}

    used = used_metric_names()
    assert used - exposed == set(), f"used by monitoring/ but not in /metrics: {sorted(used - exposed)}"
    gateway_metrics = {name for name in exposed if name.startswith("glpi_gateway_")}
    families_shown = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert {re.sub(r"_(bucket|count|sum)$", "", name) for name in gateway_metrics} <= families_shown  # none unshown
    for expression in [*dashboard_queries(), *rule_expressions().values()]:
        for metric, label, _ in label_matchers(expression):
            if label != "job":  # added by Prometheus at scrape time
                assert label in labels[metric] | {"le"}, (metric, label)


# --- promtool -------------------------------------------------------------------------------------------


def run_promtool(promtool: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *arguments], capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.slow
def test_promtool_accepts_the_alert_rules(promtool):
    checked = run_promtool(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in checked.stdout


@pytest.mark.slow
def test_the_alert_rules_fire_as_their_unit_tests_expect(promtool):
    tested = run_promtool(promtool, "test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.slow
def test_promtool_parses_every_query_of_the_dashboard(promtool, tmp_path: Path):
    """The dashboard's queries as recording rules, Grafana's variables replaced as Grafana would."""
    rules = []
    for number, query in enumerate([*dashboard_queries(), *variable_queries()]):
        if query.startswith("label_values("):  # Grafana's own function: the metric selector must parse
            query = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query).group(1)
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, query
        rules.append({"record": f"painel:consulta_{number}", "expr": query})
    path = tmp_path / "painel.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "painel", "rules": rules}]}, allow_unicode=True))
    checked = run_promtool(promtool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
