"""The doctor against the GLPI sandbox served over HTTP(S): one test per failure it must explain.

The command itself (`python app.py doctor`) runs as a subprocess for the happy path and a few
failures; the other failure modes call `diagnose()` directly, which is what the command prints.
"""

from __future__ import annotations

import datetime
import ssl
import subprocess
import sys

import pytest
import trustme

from config import load_config
from glpi_gateway import doctor
from tests.harness import ROOT, SANDBOX_APP_TOKEN, SANDBOX_USER_TOKEN, free_port, gateway_environment, sandbox_settings
from tests.helpers import ALFA, DUPLICATED, UNKNOWN

RESTRICTED_TOKEN = "sandbox-restricted-token-0123456789abcd"  # user 9: entity 1 only
OTHER_CNPJ_OPTION = {
    "name": "Outros - CNPJ",
    "table": "glpi_plugin_fields_entityoutros",
    "field": "cnpjfield",
    "datatype": "string",
    "available_searchtypes": ["contains", "notcontains"],
    "uid": "Entity.PluginFieldsEntityoutro.cnpjfield",
}
SECRETS = (SANDBOX_APP_TOKEN, SANDBOX_USER_TOKEN, RESTRICTED_TOKEN, "wrong-app-token-0123", "wrong-user-token-0123")


def diagnose(settings: dict[str, str], cnpj: str | None = None) -> doctor.Report:
    report = doctor.diagnose(cnpj, load=lambda: load_config(settings, env_file=None))
    assert_no_secret(report.render())
    return report


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def check(report: doctor.Report, title: str) -> doctor.Check:
    [found] = [check for check in report.checks if check.title.startswith(title)]
    return found


def outcomes(report: doctor.Report) -> dict[str, str]:
    return {check.title: check.outcome for check in report.checks}


def run_doctor(settings: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, "app.py", "doctor", *arguments],
        cwd=ROOT,
        env=gateway_environment(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_no_secret(completed.stdout + completed.stderr)
    return completed


@pytest.fixture
def glpi(new_sandbox):
    box = new_sandbox()
    box.url = box.start()
    return box


# --- the command --------------------------------------------------------------------------------


@pytest.mark.slow
def test_doctor_command_passes_every_check_against_a_healthy_glpi(glpi):
    completed = run_doctor(sandbox_settings(glpi.url, GLPI_REQUESTER_USER_ID="8"), "--cnpj", ALFA)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    checked = [line for line in lines if line[:2] in ("✓ ", "✗ ", "! ", "– ")]
    assert [line[0] for line in checked] == ["✓"] * 11 + ["–"]  # the last one is TLS: not for http
    assert f"✓ GLPI_URL responde e é a API REST (apirest.php): {glpi.url}" in lines
    assert "    76666 = 'Dados Fiscais - CNPJ'  ← usado" in lines
    assert f"✓ Busca de exemplo por CNPJ: {ALFA} → entidade 'Root entity > Cliente Alfa' (id 1)" in lines
    assert "✓ Usuário requerente (GLPI_REQUESTER_USER_ID): User 8 existe" in lines
    assert lines[-1] == "Tudo certo: o gateway está pronto para criar chamados."
    assert glpi.session_tokens() == []  # the doctor closes the session it opened


@pytest.mark.slow
def test_doctor_command_fails_when_the_api_is_disabled_and_skips_what_depends_on_it(new_sandbox):
    box = new_sandbox(api_enabled=False)
    completed = run_doctor(sandbox_settings(box.start()))
    assert completed.returncode == 1
    assert '✗ API REST ativada no GLPI: o GLPI respondeu ["ERROR", "API disabled"]' in completed.stdout
    assert "Configurar > Geral > API, ligue «Ativar a API REST»" in completed.stdout
    assert "– Token do usuário aceito: não verificado (depende de «API REST ativada no GLPI»)" in completed.stdout
    assert "✓ GLPI_URL responde" in completed.stdout


@pytest.mark.slow
def test_doctor_command_shows_the_web_server_fix_when_the_authorization_header_is_dropped(new_sandbox):
    box = new_sandbox(drops_authorization=True)
    completed = run_doctor(sandbox_settings(box.start()))
    assert completed.returncode == 1
    assert "✗ Token do usuário aceito: o GLPI não recebeu o token (ERROR_LOGIN_PARAMETERS_MISSING)" in completed.stdout
    for line in (
        'SetEnvIf Authorization "(.*)" HTTP_AUTHORIZATION=$1',
        "CGIPassAuth On",
        "fastcgi_param HTTP_AUTHORIZATION $http_authorization;",
    ):
        assert line in completed.stdout


@pytest.mark.slow
def test_doctor_command_reports_an_invalid_configuration_naming_the_variable():
    completed = run_doctor({"GLPI_URL": "glpi.exemplo.com.br", "GLPI_USER_TOKEN": SANDBOX_USER_TOKEN})
    assert completed.returncode == 1
    assert "✗ Configuração: GLPI_URL deve ser uma URL http(s) completa" in completed.stdout
    assert "Traceback" not in completed.stderr


# --- reaching the API ---------------------------------------------------------------------------


def test_nothing_listening_at_glpi_url_is_a_connection_failure():
    report = diagnose(sandbox_settings(f"http://127.0.0.1:{free_port()}/apirest.php"))
    failed = check(report, doctor.URL)
    assert failed.outcome == doctor.FAILED and failed.detail.startswith("não foi possível conectar a 127.0.0.1:")
    assert "firewall" in failed.fix and not report.ok


def test_a_login_page_at_glpi_url_is_not_the_api(glpi):
    glpi.fault = "html"
    failed = check(diagnose(sandbox_settings(glpi.url)), doctor.URL)
    assert failed.outcome == doctor.FAILED
    assert "não é a API REST do GLPI: parece a interface web ou uma página de login" in failed.detail
    assert "terminando em apirest.php" in failed.fix and "proxy ou login único (SSO)" in failed.fix


def test_the_web_ui_address_instead_of_apirest_php_is_named(glpi):
    report = diagnose(sandbox_settings(glpi.url.removesuffix("/apirest.php")))
    failed = check(report, doctor.URL)
    assert failed.outcome == doctor.FAILED and "HTTP 404" in failed.detail
    assert "A URL configurada não termina em /apirest.php." in failed.fix


def test_a_redirect_is_reported_with_the_address_to_use(glpi):
    glpi.fault = "redirect"
    failed = check(diagnose(sandbox_settings(glpi.url)), doctor.URL)
    https_url = glpi.url.replace("http://", "https://")
    assert failed.outcome == doctor.FAILED
    assert failed.detail == f"o servidor redirecionou a chamada (HTTP 301) para {https_url}/initSession"
    assert failed.fix.endswith(f"sem redirecionamento: {https_url}")


def test_a_failing_glpi_points_to_its_error_log(glpi):
    glpi.fault = "http500"
    failed = check(diagnose(sandbox_settings(glpi.url)), doctor.URL)
    assert failed.detail == "o GLPI respondeu com erro interno (HTTP 500)" and "log de erros" in failed.fix


# --- the API client, the App-Token and the user token ------------------------------------------


def test_an_address_without_api_client_shows_the_address_glpi_saw(new_sandbox):
    box = new_sandbox(allowed_ips={"192.0.2.10"})
    report = diagnose(sandbox_settings(box.start()))
    failed = check(report, doctor.APP_TOKEN)
    assert failed.outcome == doctor.FAILED
    assert failed.detail == "nenhum cliente de API ativo aceita o endereço 127.0.0.1 (ERROR_NOT_ALLOWED_IP)"
    assert "inclua 127.0.0.1 na faixa de IP" in failed.fix and "Clientes da API" in failed.fix
    assert outcomes(report)[doctor.API] == doctor.PASSED
    assert outcomes(report)[doctor.USER_TOKEN] == doctor.SKIPPED


def test_a_wrong_app_token_says_where_to_copy_it_from(glpi):
    failed = check(diagnose(sandbox_settings(glpi.url, GLPI_APP_TOKEN="wrong-app-token-0123")), doctor.APP_TOKEN)
    assert failed.outcome == doctor.FAILED and "ERROR_WRONG_APP_TOKEN_PARAMETER" in failed.detail
    assert "Copie para GLPI_APP_TOKEN" in failed.fix and "deixe GLPI_APP_TOKEN vazio" in failed.fix


def test_a_missing_app_token_asks_for_one(glpi):
    failed = check(diagnose(sandbox_settings(glpi.url, GLPI_APP_TOKEN="")), doctor.APP_TOKEN)
    assert failed.detail == "o cliente de API exige um App-Token e GLPI_APP_TOKEN está vazio"


def test_an_api_client_without_app_token_passes_with_an_empty_one(new_sandbox):
    box = new_sandbox(app_token=None)
    report = diagnose(sandbox_settings(box.start(), GLPI_APP_TOKEN=""))
    assert check(report, doctor.APP_TOKEN).detail == "GLPI_APP_TOKEN vazio, e o cliente de API não pede token"
    assert report.ok


def test_a_wrong_user_token_says_how_to_generate_one(glpi):
    report = diagnose(sandbox_settings(glpi.url, GLPI_USER_TOKEN="wrong-user-token-0123"))
    failed = check(report, doctor.USER_TOKEN)
    assert failed.detail == "o GLPI recusou GLPI_USER_TOKEN (ERROR_GLPI_LOGIN_USER_TOKEN)"
    assert "Chaves de acesso remoto" in failed.fix and "token externo" in failed.fix
    assert outcomes(report)[doctor.ENTITIES] == doctor.SKIPPED


# --- what the API user sees ---------------------------------------------------------------------


def test_entities_visible_to_a_restricted_user_are_counted(new_sandbox):
    box = new_sandbox(user_tokens={RESTRICTED_TOKEN: 9})
    report = diagnose(sandbox_settings(box.start(), GLPI_USER_TOKEN=RESTRICTED_TOKEN), cnpj=ALFA)
    assert check(report, doctor.ENTITIES).detail == "1 entidade(s)"
    assert check(report, doctor.LOOKUP).outcome == doctor.PASSED


def test_no_fields_option_on_entity_explains_the_container_rights(new_sandbox):
    box = new_sandbox(fields_option_id=None)
    report = diagnose(sandbox_settings(box.start()), cnpj=ALFA)
    failed = check(report, doctor.CNPJ_FIELD)
    assert failed.outcome == doctor.FAILED and failed.detail == "nenhuma opção do plugin Fields em Entidade"
    assert "direito de leitura no bloco" in failed.fix
    assert check(report, doctor.LOOKUP).outcome == doctor.SKIPPED


def test_two_cnpj_fields_are_all_listed_and_the_configured_one_is_marked(new_sandbox):
    box = new_sandbox(fields_option_id=76670, extra_search_options={76671: OTHER_CNPJ_OPTION})
    url = box.start()
    failed = check(diagnose(sandbox_settings(url)), doctor.CNPJ_FIELD)
    assert failed.outcome == doctor.FAILED
    assert failed.detail.splitlines()[1:] == [
        "Opções do plugin Fields em Entidade:",
        "76670 = 'Dados Fiscais - CNPJ'",
        "76671 = 'Outros - CNPJ'",
    ]
    assert "GLPI_CNPJ_FIELD_ID" in failed.fix
    chosen = check(diagnose(sandbox_settings(url, GLPI_CNPJ_FIELD_ID="76670")), doctor.CNPJ_FIELD)
    assert chosen.outcome == doctor.PASSED
    assert chosen.detail.splitlines() == [
        "opção 76670 (por GLPI_CNPJ_FIELD_ID)",
        "76670 = 'Dados Fiscais - CNPJ'  ← usado",
        "76671 = 'Outros - CNPJ'",
    ]


def test_a_configured_cnpj_field_id_that_is_not_a_fields_option_fails(glpi):
    failed = check(diagnose(sandbox_settings(glpi.url, GLPI_CNPJ_FIELD_ID="14")), doctor.CNPJ_FIELD)
    assert failed.outcome == doctor.FAILED
    assert failed.detail.startswith("GLPI_CNPJ_FIELD_ID=14 não é um campo do plugin Fields em Entidade")
    assert failed.detail.endswith("76666 = 'Dados Fiscais - CNPJ'")


# --- the sample lookup --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cnpj, outcome, detail",
    [
        ("11444777000161", doctor.PASSED, "11.444.777/0001-61 → entidade 'Root entity > Cliente Beta' (id 2)"),
        (UNKNOWN, doctor.FAILED, "nenhuma entidade visível tem o CNPJ 45.723.174/0001-10"),
        (
            DUPLICATED,
            doctor.FAILED,
            "2 entidades têm o CNPJ 19.131.100/0001-85: "
            "Root entity > Cliente Duplicado Cópia, Root entity > Cliente Duplicado Matriz",
        ),
        ("11.222.333/0001-82", doctor.FAILED, "'11.222.333/0001-82' não é um CNPJ válido (verifique os dígitos)"),
        (None, doctor.SKIPPED, "informe --cnpj <CNPJ de um cliente> para testar a busca"),
    ],
)
def test_sample_lookup_reports_found_not_found_ambiguous_and_invalid(glpi, cnpj, outcome, detail):
    report = diagnose(sandbox_settings(glpi.url), cnpj=cnpj)
    looked_up = check(report, doctor.LOOKUP)
    assert (looked_up.outcome, looked_up.detail) == (outcome, detail)
    assert report.ok == (outcome != doctor.FAILED)


# --- configured ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variable, itemtype, title",
    [
        ("GLPI_DEFAULT_CATEGORY_ID", "ITILCategory", "Categoria padrão"),
        ("GLPI_REQUESTER_USER_ID", "User", "Usuário requerente"),
        ("GLPI_REQUEST_TYPE_ID", "RequestType", "Tipo de requisição"),
    ],
)
def test_a_configured_id_missing_in_glpi_fails_with_where_to_find_it(glpi, variable, itemtype, title):
    report = diagnose(sandbox_settings(glpi.url, **{variable: "99"}))
    failed = check(report, title)
    assert failed.outcome == doctor.FAILED
    assert failed.detail == f"{variable}=99: não existe {itemtype} 99 no GLPI"
    assert "coluna ID" in failed.fix
    assert [c.title for c in report.checks if c.outcome == doctor.FAILED] == [failed.title]


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture
def tls_glpi(new_sandbox, tmp_path):
    """Start a sandbox over https with a certificate from a throw-away CA; returns (url, CA file)."""

    def _start(**certificate_options) -> tuple[str, str]:
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", **certificate_options).configure_cert(context)
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        return new_sandbox().start(tls=context), str(ca_file)

    return _start


def test_a_certificate_from_an_unknown_ca_is_refused_clearly(tls_glpi):
    url, _ = tls_glpi()
    report = diagnose(sandbox_settings(url))
    assert check(report, doctor.URL).detail == "o certificado TLS do GLPI não foi aceito"
    failed = check(report, doctor.TLS)
    assert failed.outcome == doctor.FAILED
    assert failed.detail == "o certificado de 127.0.0.1 não foi aceito: unable to get local issuer certificate"
    assert "REQUESTS_CA_BUNDLE" in failed.fix


def test_a_trusted_certificate_passes_with_its_expiry_date(tls_glpi, monkeypatch):
    url, ca_file = tls_glpi(not_after=datetime.datetime(2040, 3, 1, tzinfo=datetime.UTC))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)  # an internal CA, trusted the way requests trusts it
    report = diagnose(sandbox_settings(url), cnpj=ALFA)
    assert report.ok, report.render()
    passed = check(report, doctor.TLS)
    assert passed.outcome == doctor.PASSED and passed.detail.startswith("válido para 127.0.0.1, expira em 01/03/2040")


def test_an_expired_certificate_is_named_as_expired(tls_glpi, monkeypatch):
    url, ca_file = tls_glpi(
        not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC),
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)
    failed = check(diagnose(sandbox_settings(url)), doctor.TLS)
    assert failed.detail == "o certificado de 127.0.0.1 não foi aceito: certificate has expired"


def test_a_certificate_about_to_expire_is_a_warning(tls_glpi, monkeypatch):
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=5, hours=12)
    url, ca_file = tls_glpi(not_after=soon)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)
    report = diagnose(sandbox_settings(url))
    warned = check(report, doctor.TLS)
    assert warned.outcome == doctor.WARNED and "(5 dias)" in warned.detail and "Renove" in warned.fix
    assert report.ok


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_turned_off_makes_an_unverifiable_certificate_a_warning(tls_glpi):
    url, _ = tls_glpi()
    report = diagnose(sandbox_settings(url, GLPI_VERIFY_TLS="false"), cnpj=ALFA)
    warned = check(report, doctor.TLS)
    assert warned.outcome == doctor.WARNED and "GLPI_VERIFY_TLS=false" in warned.detail
    assert report.ok
